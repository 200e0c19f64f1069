import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa, { type Middleware } from 'koa';
import type { Actor } from '../http/actor.ts';
import { MANAGEMENT_AUDIENCE_PATH } from '../oauth/paths.ts';

// A tool call runs the management route it names, in process: a Koa context of its own (the
// route's method, path and query; the arguments as the parsed body; the /mcp request's actor,
// request id and client address), through the same routes as /api/v1 (app/routes.ts,
// mcpOperationsRouter). What the route answers is what the tool answers.

/** Who calls, and from where: the facts of the /mcp request that the route's audit event records. */
export interface CallerFacts {
  actor: Actor;
  requestId: string;
  ip: string;
  userAgent: string;
}

export interface Operation {
  method: string;
  /** Under /api/v1, parameters filled in. */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
}

export interface OperationAnswer {
  status: number;
  body: unknown;
}

/** Only builds contexts; it never listens. */
const contexts = new Koa();

export type OperationDispatch = (operation: Operation, caller: CallerFacts) => Promise<OperationAnswer>;

export function dispatchTo(operations: Middleware): OperationDispatch {
  return async (operation, caller) => {
    const req = new IncomingMessage(new Socket());
    req.method = operation.method;
    const search = operation.query?.toString();
    req.url = MANAGEMENT_AUDIENCE_PATH + operation.path + (search ? `?${search}` : '');
    req.headers = caller.userAgent ? { 'user-agent': caller.userAgent } : {};
    const ctx = contexts.createContext(req, new ServerResponse(req));
    ctx.request.ip = caller.ip;
    Object.assign(ctx.state, { requestId: caller.requestId, actor: caller.actor, body: operation.body });
    await operations(ctx, async () => {});
    return { status: ctx.status, body: ctx.body };
  };
}
