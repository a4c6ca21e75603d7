import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { printGatewaySchema } from '../src/app/schema';

/** Writes schema/schema.graphql from the type-graphql code (run by `npm run build`). */
const target = join(__dirname, '..', '..', 'schema', 'schema.graphql');
writeFileSync(target, printGatewaySchema());
process.stdout.write(`schema written to ${target}\n`);
