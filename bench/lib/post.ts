/**
 * The HTTP half of a peer's or the ceiling's job: one signed POST with undici, a keep-alive Pool
 * per origin, the response body drained. node-hookd does not use this (it has its own sender).
 */
import { Pool } from 'undici';

import { signedHeaders } from './common.js';

export interface Poster {
  /** POSTs `body` to endpoint `endpoint`; resolves with the status code (0 on transport error). */
  post(endpoint: number, id: string, body: string, attempt?: number): Promise<number>;
  close(): Promise<void>;
}

export function makePoster(urls: readonly string[], connections: number, timeoutMs = 30_000) {
  const pools = new Map<string, Pool>();
  const targets = urls.map((url) => {
    const parsed = new URL(url);
    let pool = pools.get(parsed.origin);
    if (!pool) {
      pool = new Pool(parsed.origin, { connections, keepAliveTimeout: 60_000 });
      pools.set(parsed.origin, pool);
    }
    return { pool, path: parsed.pathname };
  });
  const poster: Poster = {
    async post(endpoint, id, body, attempt = 1) {
      const target = targets[endpoint]!;
      try {
        const response = await target.pool.request({
          path: target.path,
          method: 'POST',
          headers: signedHeaders(id, body, 'invoice.paid', attempt),
          body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        await response.body.dump();
        return response.statusCode;
      } catch {
        return 0;
      }
    },
    async close() {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
    },
  };
  return poster;
}
