// Positioned writes on the libuv pool that retry short writes until every byte is in the file.
import fs from 'node:fs';
import { promisify } from 'node:util';

const pwrite = promisify(fs.write);

/** Writes all of `data` at `position` of `fd` (pwrite(2) may write less than asked). */
export async function pwriteAll(fd: number, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await pwrite(fd, data, done, data.length - done, position + done)).bytesWritten;
}
