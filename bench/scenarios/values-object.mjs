// get and set of small object {id, name, tags, score} values over 10,000 keys, every peer.
import { scenario } from '../lib/harness.mjs';
import { valueScenario } from '../lib/kv-scenario.mjs';
import { VALUES } from '../lib/peers.mjs';

await scenario({
  name: 'values-object',
  title: 'get and set, small object {id, name, tags, score}',
  description: 'get and set of small object {id, name, tags, score} values over 10,000 keys round-robin.',
}, (ctx) => valueScenario(ctx, 'small object {id, name, tags, score}', VALUES['object']));
