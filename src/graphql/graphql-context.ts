import type { RequestContext } from '../context';
import type { CodeService } from '../codes/code.service';

export interface Services {
  codes: CodeService;
}

/** What every resolver receives: the request's context and the gateway's services. */
export interface GraphQLContext {
  request: RequestContext;
  services: Services;
}
