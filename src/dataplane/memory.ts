/**
 * The default data plane: keeps the state in memory and forwards nothing. It is what the nNVE
 * runs with when no switch is configured, and the reference behaviour of the interface: every
 * operation is validated first (an invalid op rejects the whole `apply` and changes nothing),
 * setting what is already set is a no-op, and `dump` returns the state in normal form (see
 * state.ts).
 */
import type { DataPlane, DataPlaneOp, DataPlaneState } from './dataplane.js';
import { DataPlaneError, StateModel, normalizeOp } from './state.js';

export class MemoryDataPlane implements DataPlane {
  readonly kind = 'memory';
  private model = new StateModel();
  private closed = false;
  /** Number of ops that changed something (for tests and metrics). */
  changes = 0;

  async start(): Promise<void> {
    this.closed = false;
  }

  async apply(ops: readonly DataPlaneOp[]): Promise<void> {
    this.checkOpen();
    const normalized = ops.map(normalizeOp);
    for (const op of normalized) if (this.model.apply(op)) this.changes++;
  }

  async reconcile(state: DataPlaneState): Promise<void> {
    this.checkOpen();
    this.model = StateModel.from(state);
  }

  async dump(): Promise<DataPlaneState> {
    return this.model.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new DataPlaneError('memory data plane is closed');
  }
}
