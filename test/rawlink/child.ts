/**
 * Child process for the raw link tests (run by lifecycle.test.ts, not a test itself):
 *   open NS IF              try to open, print {"ok":true} or {"code":...}, close
 *   close-in-handler NSA IFA NSB IFB
 *                           B sends frames, A closes itself inside its frame handler, then B closes
 * Both modes must end with the process exiting by itself (no handle left open).
 */
import { RawLink } from '../../src/link/raw.js';
import { NEAREST_CUSTOMER_BRIDGE, ecpFrame } from './util.js';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'open') {
  const [ns, ifname] = args as [string, string];
  try {
    const link = new RawLink(ifname, { netns: ns });
    link.onFrames(() => {});
    await link.close();
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ code: (e as { code?: string }).code, message: String(e) }));
  }
} else if (mode === 'close-in-handler') {
  const [nsA, ifA, nsB, ifB] = args as [string, string, string, string];
  const a = new RawLink(ifA, { netns: nsA });
  const b = new RawLink(ifB, { netns: nsB });
  let received = 0;
  const aClosed = new Promise<void>((resolve) => {
    a.onFrames((frames) => {
      received += frames.length;
      void a.close().then(resolve);
      a.send([ecpFrame(NEAREST_CUSTOMER_BRIDGE, a.mac, 1, 1)]); // after close: dropped, no throw
    });
  });
  b.send(Array.from({ length: 200 }, (_, i) => ecpFrame(NEAREST_CUSTOMER_BRIDGE, b.mac, 0, i)));
  await aClosed;
  await b.close();
  await b.close(); // idempotent
  console.log(JSON.stringify({ ok: true, received, txErrorsAfterClose: a.stats().txErrors }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exitCode = 2;
}
