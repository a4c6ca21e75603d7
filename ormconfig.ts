import 'reflect-metadata';
import { loadConfig } from './src/config';
import { createDataSource } from './src/app/data-source';

/**
 * The DataSource of the TypeORM CLI, built by the same factory as the gateway's:
 *   npx typeorm -d dist/ormconfig.js migration:show
 */
export default createDataSource(loadConfig().database);
