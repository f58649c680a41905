// Work that must not keep the async context it is started from.
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Runs a function in the async context this module was loaded in (none). A timer or a socket
 * keeps the async context it is created in: one made while a request is handled (an idle
 * timer, a connection opened by the request's first storage call) would keep that request's
 * store (its call, HTTP/2 stream and data) alive for as long as it lives.
 */
export const inRootContext = AsyncLocalStorage.snapshot();
