import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Reads the QR codes of an image (PNG or JPEG bytes) with ZBar's `zbarimg` (Debian's zbar-tools):
 * a decoder written in C, of another lineage than jsQR and ZXing, the two the gateway checks
 * its styled codes with. Returns every text read, one per symbol; none when it read nothing.
 */
export async function readWithZbar(image: Buffer): Promise<string[]> {
  const directory = await mkdtemp(join(tmpdir(), 'zbar-'));
  try {
    const file = join(directory, 'code.png');
    await writeFile(file, image);
    const { stdout } = await run('zbarimg', ['--quiet', '--raw', '-Sdisable', '-Sqrcode.enable', file]).catch(
      (error: { code?: number; stdout?: string }) => {
        // zbarimg exits with 4 when the image holds no symbol.
        if (error.code === 4) return { stdout: '' };
        throw error;
      },
    );
    return stdout.split('\n').filter((line) => line !== '');
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
