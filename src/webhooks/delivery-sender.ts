import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { guardedLookup, NonPublicAddressError } from '../http/outbound.ts';
import { literalTargetProblem, type TargetPolicy } from './webhook-target.ts';

// One attempt to deliver one webhook: a POST that is bounded in time (the whole exchange, not
// only the connect) and in what it reads back, never follows a redirect (a 3xx is a failure
// like any other non-2xx) and connects only to addresses the target policy allows.

export interface SendOptions extends TargetPolicy {
  /** The whole attempt, from connect to the last byte read (design/events.md: 10 s). */
  timeoutMs?: number;
  /** How much of the answer is read at most; the rest is not waited for. */
  maxResponseBytes?: number;
}

export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  /** Why the attempt failed, for the delivery log; never holds the secret or the body sent. */
  error: string | null;
}

export const DELIVERY_TIMEOUT_MS = 10_000;
export const MAX_RESPONSE_BYTES = 64 * 1024;
const USER_AGENT = 'agent-idp-webhooks/1';

export class DeliverySender {
  readonly #options: Required<SendOptions>;
  readonly #httpAgent: HttpAgent;
  readonly #httpsAgent: HttpsAgent;

  constructor(options: SendOptions) {
    this.#options = { timeoutMs: DELIVERY_TIMEOUT_MS, maxResponseBytes: MAX_RESPONSE_BYTES, ...options };
    const lookup = guardedLookup(options.allowPrivateTargets);
    // keepAlive off: every attempt resolves and checks its address again.
    this.#httpAgent = new HttpAgent({ keepAlive: false, lookup } as ConstructorParameters<typeof HttpAgent>[0]);
    this.#httpsAgent = new HttpsAgent({ keepAlive: false, lookup } as ConstructorParameters<typeof HttpsAgent>[0]);
  }

  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const target = URL.parse(url);
    if (!target || (target.protocol !== 'https:' && !(target.protocol === 'http:' && this.#options.allowInsecureUrls))) {
      return Promise.resolve({ ok: false, statusCode: null, error: 'the URL is not one this service may call' });
    }
    const literal = literalTargetProblem(target, this.#options);
    if (literal) return Promise.resolve({ ok: false, statusCode: null, error: `refused: ${literal}` });
    const https = target.protocol === 'https:';
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (result: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(result);
      };
      const req = (https ? httpsRequest : httpRequest)(
        target,
        {
          method: 'POST',
          agent: https ? this.#httpsAgent : this.#httpAgent,
          headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': USER_AGENT },
        },
        (res) => {
          const statusCode = res.statusCode ?? 0;
          let read = 0;
          const done = () => {
            const ok = statusCode >= 200 && statusCode < 300;
            finish({ ok, statusCode, error: ok ? null : `the endpoint answered ${statusCode}` });
          };
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            // Enough: the status is what counts, and a huge answer must not hold the sender.
            if (read >= this.#options.maxResponseBytes) done();
          });
          res.on('end', done);
          res.on('error', (err) => finish({ ok: false, statusCode, error: `reading the answer failed: ${err.message}` }));
        },
      );
      const timer = setTimeout(() => finish({ ok: false, statusCode: null, error: `timed out after ${this.#options.timeoutMs} ms` }), this.#options.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reason = err instanceof NonPublicAddressError ? `refused: ${err.message}` : `${err.code ?? 'error'}: ${err.message}`;
        finish({ ok: false, statusCode: null, error: reason.slice(0, 500) });
      });
      req.end(body);
    });
  }
}
