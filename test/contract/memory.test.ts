import { MockRepository } from '../../src/repository/memory-repository.js';
import type { Repository, RepositoryTx } from '../../src/repository/repository.js';
import { describeRepositoryContract } from './repository-contract.js';

describeRepositoryContract('MockRepository', {
  create: async () => new MockRepository(),
  // One in-memory store has no second "process": concurrency within one instance is what the
  // mock offers (each operation is atomic).
  createPeer: async (repository) => repository,
  openCallerTransaction: async (repository) => {
    const tx: RepositoryTx = await repository.beginTx();
    return { client: tx, commit: () => tx.commit(), rollback: () => tx.rollback() };
  },
  destroy: (repository: Repository) => repository.close(),
});
