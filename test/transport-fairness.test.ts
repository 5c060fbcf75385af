// Fairness among authenticated links (LINK_SLICE_MS in transport.ts): secret holders flooding an
// open link with pipelined frames must not hold the member's thread for a whole socket read of
// them while another link waits. Checked from what the member's handlers see of its turn counter
// (`_stats.turns`) and frame counter, not from how fast anything went.
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = resolve(__dirname, process.env.SG_DIST ?? '../dist');
const { Transport } = (await import(pathToFileURL(`${DIST}/transport/index.js`).href)) as typeof import('../dist/transport/index.js');

const SECRET = 'fairness-test-secret-0123456789ab';
/** transport.ts LINK_SLICE_MS */
const LINK_SLICE_MS = 0.5;
/** transport.ts FAIR_DRAIN_MS */
const FAIR_DRAIN_MS = 2;
/** What each flood request costs the member's thread (its handler spins this long). */
const SPIN_MS = 0.25;
const FLOODERS = 4;
const PER_FLOODER = 600;

type Stats = { turns: number; framesIn: number; fairDeferred: number; fairDrainCut: number };

describe('fairness among authenticated links', () => {
  it('a link flooding pipelined frames gets at most its slice of a turn, and a light link is served between its slices', { timeout: 60_000 }, async () => {
    const m = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'fair-member', log: () => undefined });
    const st = () => (m as unknown as { _stats: Stats })._stats;
    // per flood frame: [turn, link, frame number]
    const seen: Array<[number, string, number]> = [];
    let spun = 0;
    m.handle('spin', (_b: unknown, from: string) => {
      seen.push([st().turns, from, st().framesIn]);
      spun++;
      const end = performance.now() + SPIN_MS;
      while (performance.now() < end);
      return true;
    });
    // the light link's request: how many flood requests ran since it was sent
    let lightSentAt = -1;
    const waited: number[] = [];
    m.handle('light', () => {
      waited.push(spun - lightSentAt);
      return true;
    });
    // the flooders run in a worker thread, so that they keep writing frames while the member's
    // thread works: FLOODERS authenticated links, each sending PER_FLOODER requests one frame at
    // a time (one request per turn of the worker's loop), without waiting for replies
    const flood = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const { dist, url, secret, flooders, perFlooder } = workerData;
      (async () => {
        const { Transport } = await import(dist);
        const links = await Promise.all(Array.from({ length: flooders }, async (_, i) => {
          const t = await Transport.listen({ host: '127.0.0.1', port: 0, secret, memberId: 'flooder-' + i, log: () => undefined });
          const id = await t.connect(url, 10000);
          return { t, id };
        }));
        parentPort.postMessage('ready');
        const replies = [];
        for (let k = 0; k < perFlooder; k++) {
          for (const { t, id } of links) replies.push(t.request(id, 'spin', k, 30000));
          await new Promise((r) => setImmediate(r));
        }
        const got = await Promise.all(replies);
        for (const { t } of links) await t.close();
        parentPort.postMessage(got.filter((x) => x === true).length);
      })().catch((e) => parentPort.postMessage('error: ' + (e && e.stack)));
      `,
      { eval: true, workerData: { dist: pathToFileURL(`${DIST}/transport/index.js`).href, url: m.url, secret: SECRET, flooders: FLOODERS, perFlooder: PER_FLOODER } },
    );
    const light = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'light', log: () => undefined });
    try {
      const ready = new Promise<unknown>((res, rej) => {
        flood.once('message', res);
        flood.once('error', rej);
      });
      const lightId = await light.connect(m.url, 10000);
      expect(await ready).toBe('ready');
      const done = new Promise<unknown>((res, rej) => {
        flood.once('message', res);
        flood.once('error', rej);
      });
      let finished = false;
      void done.then(() => (finished = true));
      // the light link: one request at a time while the flood lasts
      while (!finished && spun < FLOODERS * PER_FLOODER) {
        lightSentAt = spun;
        expect(await light.request(lightId, 'light', null, 30000)).toBe(true);
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(await done).toBe(FLOODERS * PER_FLOODER);

      // frames of one link handled in one turn
      const perTurn = new Map<string, Set<number>>();
      for (const [turn, from, frame] of seen) {
        const k = `${turn}|${from}`;
        let s = perTurn.get(k);
        if (s === undefined) perTurn.set(k, (s = new Set()));
        s.add(frame);
      }
      let most = 0;
      for (const s of perTurn.values()) most = Math.max(most, s.size);
      const s = st();
      waited.sort((a, b) => a - b);
      console.log(
        `fairness: ${spun} flood requests in ${new Set(seen.map((x) => x[2])).size} frames over ${s.turns} turns; most frames of one link in one turn ${most}; ` +
          `${s.fairDeferred} frames waited for a later turn, drain cut ${s.fairDrainCut} times; the light link's ${waited.length} requests waited behind ` +
          `median ${waited[waited.length >> 1]}, max ${waited[waited.length - 1]} flood requests`,
      );
      // the flood was queued by the policy at all (the member was busy enough to need it)
      expect(s.fairDeferred).toBeGreaterThan(0);
      expect(waited.length).toBeGreaterThan(5);
      // The invariant: a link's frames run only while they took less than LINK_SLICE_MS of the
      // turn, and each flood frame takes at least SPIN_MS, so at most ceil(SLICE / SPIN) of them
      // per link and turn (without the policy, a link's whole socket read runs in one turn: tens
      // to hundreds of frames).
      expect(most).toBeLessThanOrEqual(Math.ceil(LINK_SLICE_MS / SPIN_MS));
      // The light link's request waits for at most two turns' worth of flood work: the drain of
      // queued links (FAIR_DRAIN_MS, plus the last link's slice) and one slice of each flooder read
      // in the same poll, twice over (the request may be sent just after a poll).
      const perSlice = Math.ceil(LINK_SLICE_MS / SPIN_MS);
      const bound = 2 * (Math.ceil(FAIR_DRAIN_MS / SPIN_MS) + perSlice + FLOODERS * perSlice);
      expect(waited[waited.length - 1]).toBeLessThanOrEqual(bound);
    } finally {
      await flood.terminate();
      await light.close();
      await m.close();
    }
  });
});
