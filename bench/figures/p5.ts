/**
 * P5 migration: ping loss at 100 pps while a VM migrates between two hypervisors, through two
 * nNVEs with Open vSwitch (userspace datapath) and VXLAN between them.
 *
 * Not measured yet: it needs the nNVE's data plane (issue 8: OVS driver wired to TSI states,
 * VXLAN towards remote nNVEs from the NVA). To add it, replace `runP5` with a function that
 * builds that lab (test/harness/ovs.ts has the OVS pieces), migrates a VM while pinging, and
 * returns `{ measured: true, lost_packets, ... }`; the report and the JSON pick it up as is.
 */
import { GOALS, type Goal, type Sizes } from '../lib/config.js';
import type { BenchPair } from '../lib/pair.js';

export type P5Result =
  | {
      measured: false;
      /** Why not, in one sentence. */
      reason: string;
      goal: Goal;
    }
  | {
      measured: true;
      lost_packets: number;
      sent_packets: number;
      /** Longest gap between two answered pings, ms. */
      max_gap_ms: number;
      goal: Goal;
    };

export const P5_NEEDS =
  'the nNVE data plane (issue 8: Open vSwitch + VXLAN driven by TSI states), not merged yet';

export async function runP5(_pair: BenchPair, _sizes: Sizes): Promise<P5Result> {
  return {
    measured: false,
    reason: `not measured: needs ${P5_NEEDS}`,
    goal: { text: `<= ${GOALS.p5LostPackets} lost packet at 100 pps`, met: null },
  };
}
