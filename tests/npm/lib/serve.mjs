// Starts `loupe serve` on a free loopback port for a test and stops it afterwards.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const LOUPE = process.env.LOUPE_BINARY;
export const TESTDATA = process.env.LOUPE_TESTDATA ?? '../shared/testdata';

// Why these tests cannot run here, or null. ctest maps a skip to exit code 77.
export function missing() {
  if (!LOUPE || !existsSync(LOUPE)) return 'LOUPE_BINARY is not set to the loupe binary';
  if (!existsSync(path.join(TESTDATA, 'models/stories260K.gguf')))
    return `no test data at ${TESTDATA} (set LOUPE_TESTDATA)`;
  return null;
}

export function testModel(rel = 'models/stories260K.gguf') {
  return path.join(TESTDATA, rel);
}

export async function startServer(args = [], { model = testModel(), data = null } = {}) {
  const dir = data ?? mkdtempSync(path.join(tmpdir(), 'loupe-npm-'));
  const threads = args.includes('-t') ? [] : ['-t', '1'];
  const argv = ['serve', '-m', model, '--port', '0', '--data', dir, ...threads, ...args];
  const child = spawn(LOUPE, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loupe serve did not start:\n${log}`)), 30000);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`loupe serve exited (${code ?? signal}):\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    port,
    dir,
    child,
    base: `http://127.0.0.1:${port}`,
    log: () => log,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    async stop() {
      await this.kill('SIGTERM');
      if (data === null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Runs `loupe ARGS...` and returns { code, stdout, stderr }.
export function loupe(args) {
  return new Promise((resolve) => {
    const child = spawn(LOUPE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
