// A scratch project that installs the packed tarball, as a new user would: `npm pack` of this
// repository (the dist that `npm test` just built), `npm init -y` in a temporary folder, then
// `npm install <tarball>` (its dependencies come from the registry). Shared by the package and
// README tests.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of child npm and node processes: without the npm_* variables of the `npm test` that runs us. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
}

/** Runs a command to its end; never rejects on a non-zero exit (the caller asserts on `code`). */
export function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: cleanEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
      resolve({ code, stdout, stderr });
    });
  });
}

export function node(args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  return run(process.execPath, args, cwd, timeoutMs);
}

export interface Consumer {
  /** The scratch folder: `tarball` and `project/`. */
  root: string;
  tarball: string;
  /** Paths inside the tarball (package/ stripped). */
  files: string[];
  /** The `npm init -y` project that installed the tarball. */
  project: string;
  /** What `npm install <tarball>` printed (stdout and stderr). */
  install: Run;
  dispose(): void;
}

/** Packs the repository and installs the tarball (plus `extra` packages) into a fresh `npm init -y` project. */
export async function packAndInstall(extra: string[] = []): Promise<Consumer> {
  const root = mkdtempSync(join(tmpdir(), 'shardgrid-consumer-'));
  // --ignore-scripts: `npm test` has just built dist; the prepack build is tested on its own
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], REPO);
  if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  const info = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(root, info[0].filename);
  const project = join(root, 'project');
  mkdirSync(project);
  const initP = await run('npm', ['init', '-y'], project);
  if (initP.code !== 0) throw new Error(`npm init failed: ${initP.stderr}`);
  const install = await run('npm', ['install', '--no-audit', '--no-fund', tarball, ...extra], project);
  if (install.code !== 0) throw new Error(`npm install of the tarball failed (${install.code}): ${install.stderr}`);
  return {
    root,
    tarball,
    files: info[0].files.map((f) => f.path),
    project,
    install,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
