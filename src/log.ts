/**
 * Where the library's own messages go. An application passes a pino-compatible `logger`
 * (`createGrid({ logger })`: any object with `debug`, `info`, `warn` and `error`, e.g. pino,
 * console, a winston or bunyan child); then every message goes there at its level, pino style
 * (context object first when there is an error: `logger.warn({ err }, message)`).
 * Without one, the library is silent except for real warnings, which become process warnings
 * (`process.emitWarning`, so `--no-warnings` and `process.on('warning')` apply), each *kind*
 * once per process: the same message with other numbers in it is not repeated.
 */
import { GridError } from './errors.js';

/** One method of a pino-compatible logger: `(msg)` or `(context, msg)`. */
export type LogMethod = (objOrMsg: unknown, msg?: string) => void;

/** A pino-compatible logger: pino itself, console, or anything with these four methods. */
export interface Logger {
  /** Called for the messages of level debug. */
  debug: LogMethod;
  /** Called for the messages of level info (cluster joins and leaves, …). */
  info: LogMethod;
  /** Called for the messages of level warn (a virtual node that had to be restarted, a refused peer, …). */
  warn: LogMethod;
  /** Called for the messages of level error (lost partitions, …). */
  error: LogMethod;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string, err?: unknown) => void;

/** True for an object with the four methods of a Logger. */
export function isLogger(x: unknown): x is Logger {
  if (typeof x !== 'object' || x === null) return false;
  const l = x as Record<string, unknown>;
  return typeof l.debug === 'function' && typeof l.info === 'function' && typeof l.warn === 'function' && typeof l.error === 'function';
}

/** Kinds of process warnings already emitted (default sink). */
const emitted = new Set<string>();

/** A message's kind: its text with numbers blanked ("virtual node 3 …, attempt 2" = "virtual node # …, attempt #"). */
function kindOf(code: string, level: LogLevel, message: string): string {
  return `${code}\u0000${level}\u0000${message.replace(/\d+/g, '#')}`;
}

/** The error's text when the message does not already say it, and its code. */
function errorSuffix(message: string, err: unknown): string {
  const text = err instanceof Error && !message.includes(err.message) ? `: ${err.message}` : '';
  return `${text}${err instanceof GridError ? ` [${err.code}]` : ''}`;
}

/**
 * The sink of one component. `prefix` (called per message: a member's id changes when it
 * rejoins) starts every line; `code` is the process warning's code when there is no logger.
 */
export function createLog(logger: Logger | undefined, prefix: () => string, code: string): Log {
  if (logger !== undefined) {
    return (level, message, err) => {
      const line = `${prefix()}: ${message}`;
      if (err === undefined) logger[level](line);
      else logger[level]({ err }, line);
    };
  }
  return (level, message, err) => {
    if (level === 'debug' || level === 'info') return;
    const kind = kindOf(code, level, message);
    if (emitted.has(kind)) return;
    emitted.add(kind);
    process.emitWarning(`${prefix()}: ${message}${errorSuffix(message, err)}`, { code });
  };
}
