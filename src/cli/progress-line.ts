import type { CliOutput } from './output.ts';

/** How a command shows that it is waiting. */
export type ProgressMode = 'tty' | 'plain' | 'off';

export interface ProgressLineOptions {
  /** `tty`: one status line redrawn in place; `plain`: a line per phase; `off`: nothing. */
  readonly mode: ProgressMode;
  /** Where plain lines go (stderr: stdout stays the command's result). */
  readonly output: CliOutput;
  /** Where the TTY line is drawn (default process.stderr). */
  readonly tty?: { write(text: string): unknown };
  readonly now?: () => number;
  /** How often the TTY line is redrawn (default 200 ms). */
  readonly redrawMs?: number;
  /** In plain mode, a "still waiting" line after this long without news (default 10 s). */
  readonly plainEveryMs?: number;
}

const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function seconds(ms: number): string {
  return ms < 60_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/**
 * The status of a command that waits (`cube up` for its agents, `cube submit --wait`,
 * `cube logs --follow` before the first output, `cube demo`): on a terminal one line,
 * redrawn in place, with the time waited and what for; otherwise a plain line when a wait
 * starts and when it ends; nothing in `--json` mode.
 */
export class ProgressLine {
  readonly #o: ProgressLineOptions;
  readonly #now: () => number;
  #what: string | null = null;
  #detail = '';
  #startedMs = 0;
  #lastPlainMs = 0;
  #frame = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: ProgressLineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The mode for a command: off with `--json`, a redrawn line when stderr is a terminal. */
  static modeFor(options: { readonly json?: boolean; readonly isTty?: boolean }): ProgressMode {
    if (options.json === true) return 'off';
    return (options.isTty ?? process.stderr.isTTY) === true ? 'tty' : 'plain';
  }

  /** Starts waiting for `what` (ends the previous wait, if any, as done). */
  begin(what: string): void {
    if (this.#what !== null) this.end();
    this.#what = what;
    this.#detail = '';
    this.#startedMs = this.#now();
    this.#lastPlainMs = this.#startedMs;
    if (this.#o.mode === 'plain') this.#o.output.err(`waiting for ${what} ...`);
    if (this.#o.mode === 'tty') {
      this.#draw();
      this.#timer = setInterval(() => this.#draw(), this.#o.redrawMs ?? 200);
      this.#timer.unref();
    }
  }

  /** News about the current wait (e.g. `3 of 5 joined`); plain mode prints it now and then. */
  update(detail: string): void {
    if (this.#what === null || detail === this.#detail) return;
    this.#detail = detail;
    if (this.#o.mode === 'tty') this.#draw();
    if (this.#o.mode === 'plain') {
      const now = this.#now();
      if (now - this.#lastPlainMs >= (this.#o.plainEveryMs ?? 10_000)) {
        this.#lastPlainMs = now;
        this.#o.output.err(
          `  still waiting for ${this.#what} (${seconds(now - this.#startedMs)}): ${detail}`,
        );
      }
    }
  }

  /** Prints a line of the command's own output without tearing the status line. */
  print(line: string, to: 'out' | 'err' = 'out'): void {
    if (this.#o.mode === 'tty' && this.#what !== null) this.#clear();
    this.#o.output[to](line);
    if (this.#o.mode === 'tty' && this.#what !== null) this.#draw();
  }

  /** Ends the current wait: `outcome` (default `done`) with the time it took. */
  end(outcome = 'done'): void {
    if (this.#what === null) return;
    const tookMs = this.#now() - this.#startedMs;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#o.mode === 'tty') this.#clear();
    if (this.#o.mode === 'plain')
      this.#o.output.err(`waiting for ${this.#what}: ${outcome} after ${seconds(tookMs)}`);
    this.#what = null;
  }

  #write(text: string): void {
    (this.#o.tty ?? process.stderr).write(text);
  }

  #clear(): void {
    this.#write('\r\x1b[2K');
  }

  #draw(): void {
    if (this.#what === null) return;
    this.#frame = (this.#frame + 1) % spinner.length;
    const elapsed = seconds(this.#now() - this.#startedMs);
    const columns = (process.stderr.columns ?? 100) - 1;
    const line = `${spinner[this.#frame] ?? ''} waiting for ${this.#what} ${elapsed}${this.#detail === '' ? '' : ` — ${this.#detail}`}`;
    this.#write(`\r\x1b[2K${line.slice(0, columns)}`);
  }
}
