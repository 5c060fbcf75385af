// get and set of 16 B string values over 10,000 keys, every peer.
import { scenario } from '../lib/harness.mjs';
import { valueScenario } from '../lib/kv-scenario.mjs';
import { VALUES } from '../lib/peers.mjs';

await scenario({
  name: 'values-16b',
  title: 'get and set, 16 B string',
  description: 'get and set of 16 B string values over 10,000 keys round-robin.',
}, (ctx) => valueScenario(ctx, '16 B string', VALUES['16B']));
