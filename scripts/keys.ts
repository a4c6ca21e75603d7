import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { Access, Role } from '../src/access';
import { openDatabase } from '../src/app/data-source';
import { ApiKeyService, type ApiKeyRecord } from '../src/auth/api-key.service';
import { ConfigError, loadConfig } from '../src/config';
import { PublicError } from '../src/errors';
import { createLogger } from '../src/logging/logger';
import { PageService } from '../src/pages/page.service';
import { TokenCipher } from '../src/pages/token-cipher';

const usage = `Manages the gateway's API keys from a shell, on the database of DATABASE_URL (as the gateway).

  npm run keys -- create --name <name> --role admin|editor|viewer [--page <page id>]…
  npm run keys -- list
  npm run keys -- revoke <key id>

  create   prints the new key once (only its hash is stored); --page, repeatable, scopes
           an editor or viewer key to pages (registered ones); without it, every page
  list     every key, revoked ones included; never a secret
  revoke   refuses the key at once; its open WebSockets are closed within 5 s

The first key locks an open gateway: from then on every request needs a key.`;

function formatKey(key: ApiKeyRecord): string {
  const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
  const pages = key.pageIds === null ? 'every page' : `pages ${key.pageIds.join(', ')}`;
  const used = key.lastUsedAt ? `last used ${key.lastUsedAt.toISOString()}` : 'never used';
  return `${key.id}  ${key.prefix}…  ${key.role.padEnd(6)}  ${JSON.stringify(key.name)}  ${pages}  ${used}  ${state}`;
}

async function run(command: string | undefined, args: string[]): Promise<void> {
  const config = loadConfig();
  // Quiet: the CLI prints its own lines; warnings (e.g. a token under an unknown key) still show.
  const logger = createLogger({ level: 'warn' });
  const db = await openDatabase(config.database);
  try {
    const pages = new PageService(db, {
      defaultPageId: config.defaultPageId,
      defaultPageAccessToken: undefined,
      cipher: new TokenCipher(config.encryptionKey, config.previousEncryptionKeys),
      logger,
    });
    const keys = new ApiKeyService(db, pages, { adminApiKey: config.adminApiKey, logger });
    const context = { requestId: 'keys-cli', access: Access.internal() };

    if (command === 'create') {
      const { values } = usageOnError(() =>
        parseArgs({
          args,
          options: { name: { type: 'string' }, role: { type: 'string' }, page: { type: 'string', multiple: true } },
        }),
      );
      const role = values.role?.toUpperCase() as Role | undefined;
      if (!values.name || !role || !Object.values(Role).includes(role)) {
        throw new UsageError('create needs --name <name> and --role admin|editor|viewer');
      }
      const created = await keys.create(context, { name: values.name, role, pageIds: values.page ?? null });
      process.stdout.write(
        `${formatKey(created.apiKey)}\n\n${created.key}\n\nThis is the only time the key is shown: store it now (only its hash is kept).\n`,
      );
      return;
    }
    if (command === 'list') {
      let after: string | null = null;
      let shown = 0;
      do {
        const page = await keys.list(context, { first: 100, after });
        for (const key of page.items) process.stdout.write(`${formatKey(key)}\n`);
        shown += page.items.length;
        after = page.hasNextPage ? (page.cursors.at(-1) ?? null) : null;
      } while (after !== null);
      if (shown === 0) process.stdout.write('No API keys: the gateway is open to every request unless ADMIN_API_KEY is set.\n');
      return;
    }
    if (command === 'revoke') {
      const [id] = args;
      if (!id) throw new UsageError('revoke needs the id of the key (see `npm run keys -- list`)');
      const revoked = await keys.revoke(context, id, { allowLastAdmin: true });
      process.stdout.write(`${formatKey(revoked)}\n`);
      if (await keys.isOpen()) {
        process.stdout.write('No active key is left and ADMIN_API_KEY is not set: the gateway is open to every request again.\n');
      }
      return;
    }
    throw new UsageError(command === undefined ? 'a command is needed' : `unknown command "${command}"`);
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

/** parseArgs refuses an unknown option or a missing value with a TypeError: for the user, a usage error. */
function usageOnError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

const [command, ...rest] = process.argv.slice(2);
if (command === '--help' || command === 'help') {
  process.stdout.write(`${usage}\n`);
} else {
  run(command, rest).catch((error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${usage}\n`);
    else if (error instanceof ConfigError || error instanceof PublicError) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}
