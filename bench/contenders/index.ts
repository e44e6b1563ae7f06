import { databaseUrl } from '../lib/common.js';
import { ceilingContender } from './ceiling.js';
import { graphileContender } from './graphile.js';
import { hookdContender } from './hookd.js';
import { pgbossContender } from './pgboss.js';
import type { Contender } from './types.js';

export function contenderByName(name: string, url = databaseUrl()): Contender {
  switch (name) {
    case 'node-hookd':
      return hookdContender(url);
    case 'pg-boss':
      return pgbossContender(url);
    case 'graphile-worker':
      return graphileContender(url);
    case 'ceiling':
      return ceilingContender(url);
    default:
      throw new Error(`unknown contender ${name}`);
  }
}
