/** Adapters that present StationNode and BridgeNode to the simulator's fabric. */
import { BridgeNode, type BridgeNodeOutput } from '../node/bridge-node.js';
import { StationNode, type StationNodeOutput } from '../node/station-node.js';
import type { SimNode, SimOutput } from './fabric.js';

function fromStation(outs: readonly StationNodeOutput[]): SimOutput[] {
  return outs as SimOutput[];
}

function fromBridge(outs: readonly BridgeNodeOutput[]): SimOutput[] {
  return outs as SimOutput[];
}

export class SimStation implements SimNode {
  constructor(
    readonly id: string,
    public node: StationNode,
  ) {}
  deadline(): number | undefined {
    return this.node.deadline();
  }
  handleTimeout(now: number): SimOutput[] {
    return fromStation(this.node.handleTimeout(now));
  }
  handleFrame(port: string, frame: Uint8Array, now: number): SimOutput[] {
    return fromStation(this.node.handleFrame(port, frame, now));
  }
  static outputs(outs: readonly StationNodeOutput[]): SimOutput[] {
    return fromStation(outs);
  }
}

export class SimBridge implements SimNode {
  constructor(
    readonly id: string,
    public node: BridgeNode,
  ) {}
  deadline(): number | undefined {
    return this.node.deadline();
  }
  handleTimeout(now: number): SimOutput[] {
    return fromBridge(this.node.handleTimeout(now));
  }
  handleFrame(port: string, frame: Uint8Array, now: number): SimOutput[] {
    return fromBridge(this.node.handleFrame(port, frame, now));
  }
  static outputs(outs: readonly BridgeNodeOutput[]): SimOutput[] {
    return fromBridge(outs);
  }
}
