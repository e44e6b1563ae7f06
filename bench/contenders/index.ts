import { databaseUrl } from '../lib/common.js';
import type { Contender } from './types.js';

/**
 * The contender of that name. Its module is imported on demand, so a benchmark process loads
 * only the library it measures: node-hookd's worker process must not carry pg-boss,
 * graphile-worker and their dependencies (luxon, cron parsers…) in its RSS and heap.
 */
export async function contenderByName(name: string, url = databaseUrl()): Promise<Contender> {
  switch (name) {
    case 'node-hookd':
      return (await import('./hookd.js')).hookdContender(url);
    case 'pg-boss':
      return (await import('./pgboss.js')).pgbossContender(url);
    case 'graphile-worker':
      return (await import('./graphile.js')).graphileContender(url);
    case 'ceiling':
      return (await import('./ceiling.js')).ceilingContender(url);
    default:
      throw new Error(`unknown contender ${name}`);
  }
}
