// A data member for the cluster bench: createGrid with options.cluster; prints its url as one
// JSON line on stdout and runs until killed. argv[2] = JSON { seeds, secret }.
import { createGrid } from '../../dist/index.js';

const cfg = JSON.parse(process.argv[2]);
process.on('warning', () => undefined);
const grid = await createGrid({ workers: 1, memory: '128MB', cluster: { host: '127.0.0.1', port: 0, seeds: cfg.seeds, secret: cfg.secret, backups: 1 } });
process.stdout.write(JSON.stringify({ url: grid.cluster.url, id: grid.cluster.memberId }) + '\n');
const stop = () => void grid.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
