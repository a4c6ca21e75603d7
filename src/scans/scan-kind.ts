/**
 * How the person reached the bot. Kept apart from the entity so that light consumers
 * (the webhook parser, `npm run scan`) do not load the ORM and the schema builder.
 */
export enum ScanKind {
  POSTBACK = 'POSTBACK',
  REFERRAL = 'REFERRAL',
}
