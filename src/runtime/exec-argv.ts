/**
 * Node flags for the library's own worker threads.
 *
 * A Worker inherits `process.execArgv` by default. When the host process was started with
 * `node -e <script>` / `-p` (or `--input-type`, which only makes sense with them), those flags
 * reach the worker too and it evaluates the host's script instead of its own entry, then exits.
 * Everything else (`--inspect`, `--max-old-space-size`, loaders, …) is kept.
 */
const DROP_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print']);
const DROP_ALONE = new Set(['--input-type', '--interactive', '-i']);

export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 && a.startsWith('--') ? a.slice(0, eq) : a;
    if (DROP_WITH_VALUE.has(name)) {
      if (eq < 0) i++; // the script is the next element
      continue;
    }
    if (DROP_ALONE.has(name)) {
      if (name === '--input-type' && eq < 0) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}
