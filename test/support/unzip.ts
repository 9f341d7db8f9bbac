// Reads the archives src/deploy/zip.ts writes, so that a test can unpack the deployment package as Azure would.

import {crc32, inflateRawSync} from 'node:zlib';
import type {ZipEntry} from '../../src/deploy/zip.js';

/** Reads what `zip` writes (deflated or stored entries), checking each entry's CRC. */
export function unzip(archive: Buffer): ZipEntry[] {
	const endAt = archive.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
	if (endAt < 0) {
		throw new Error('not a zip archive: no end of central directory');
	}

	const count = archive.readUInt16LE(endAt + 10);
	let at = archive.readUInt32LE(endAt + 16);
	const entries: ZipEntry[] = [];
	for (let index = 0; index < count; index++) {
		const method = archive.readUInt16LE(at + 10);
		const checksum = archive.readUInt32LE(at + 16);
		const compressedSize = archive.readUInt32LE(at + 20);
		const nameLength = archive.readUInt16LE(at + 28);
		const extraLength = archive.readUInt16LE(at + 30);
		const commentLength = archive.readUInt16LE(at + 32);
		const localAt = archive.readUInt32LE(at + 42);
		const name = archive.toString('utf8', at + 46, at + 46 + nameLength);
		const dataAt = localAt + 30 + archive.readUInt16LE(localAt + 26) + archive.readUInt16LE(localAt + 28);
		const raw = archive.subarray(dataAt, dataAt + compressedSize);
		const data = method === 8 ? inflateRawSync(raw) : Buffer.from(raw);
		if (crc32(data) !== checksum) {
			throw new Error(`zip entry ${name}: CRC mismatch`);
		}

		entries.push({name, data});
		at += 46 + nameLength + extraLength + commentLength;
	}

	return entries;
}
