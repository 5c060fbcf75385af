// get and set of 4 KB string values over 10,000 keys, every peer.
import { scenario } from '../lib/harness.mjs';
import { valueScenario } from '../lib/kv-scenario.mjs';
import { VALUES } from '../lib/peers.mjs';

await scenario({
  name: 'values-4kb',
  title: 'get and set, 4 KB string',
  description: 'get and set of 4 KB string values over 10,000 keys round-robin.',
}, (ctx) => valueScenario(ctx, '4 KB string', VALUES['4KB']));
