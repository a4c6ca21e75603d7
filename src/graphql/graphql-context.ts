import type { Code } from '../codes/code.entity';
import type { CodeService } from '../codes/code.service';
import type { RequestContext } from '../context';
import type { ScanFeed } from '../pubsub';
import type { ScanService } from '../scans/scan.service';
import { pageRefKey } from '../db/transformers';
import { BatchLoader } from './batch-loader';

export interface Services {
  codes: CodeService;
  scans: ScanService;
  feed: ScanFeed;
}

export interface Loaders {
  codeOfScan: BatchLoader<{ pageId: string; ref: string | null }, Code>;
}

/** What every resolver receives: the request's context, the gateway's services and per-request loaders. */
export interface GraphQLContext {
  request: RequestContext;
  services: Services;
  loaders: Loaders;
  /** Over WebSocket: drops the connection (a subscriber too slow to keep up). */
  dropConnection?: (reason: string) => void;
}

export function createLoaders(services: Services): Loaders {
  return {
    codeOfScan: new BatchLoader(
      (keys) => services.scans.codesFor(keys),
      (key) => pageRefKey(key.pageId, key.ref),
    ),
  };
}
