// A zip archive writer, just enough for the deployment package: deflated files, no zip64 (the package is a
// few tens of megabytes and a few thousand files, far under zip's 4 GiB and 65,535-entry limits).

import {crc32, deflateRawSync} from 'node:zlib';

export interface ZipEntry {
	/** Forward slashes, relative. */
	name: string;
	data: Buffer;
}

const dosEpoch = (1 << 21) | (1 << 16); // 1980-01-01: a fixed time, so the same tree makes the same archive.

/** An entry name that an unzip could write outside the folder it unpacks into, or that readers disagree on. */
export class ZipEntryNameError extends Error {
	override name = 'ZipEntryNameError';
}

/**
 * Refuses a name that is absolute, has a drive letter, a backslash (a separator on Windows), an empty, `.` or `..`
 * segment, or a control character: unpacked, each could land outside the folder or somewhere unexpected.
 */
export function checkEntryName(name: string): void {
	const segments = name.split('/');
	if (
		name === '' ||
		name.startsWith('/') ||
		/^[A-Za-z]:/.test(name) ||
		name.includes('\\') ||
		/[\u0000-\u001F\u007F]/.test(name) ||
		segments.some(segment => segment === '' || segment === '.' || segment === '..')
	) {
		throw new ZipEntryNameError(`refusing the zip entry name ${JSON.stringify(name)}: names are relative, with / between plain segments`);
	}
}

/**
 * @example
 * await writeFile('app.zip', zip([{name: 'host.json', data: Buffer.from('{}')}]));
 */
export function zip(entries: readonly ZipEntry[]): Buffer {
	if (entries.length > 0xffff) {
		throw new RangeError(`a zip without zip64 holds at most 65,535 entries, got ${entries.length}`);
	}

	for (const entry of entries) {
		checkEntryName(entry.name);
	}

	const local: Buffer[] = [];
	const central: Buffer[] = [];
	let offset = 0;
	for (const entry of entries) {
		const name = Buffer.from(entry.name, 'utf8');
		const compressed = deflateRawSync(entry.data);
		const checksum = crc32(entry.data);
		const header = Buffer.alloc(30);
		header.writeUInt32LE(0x04034b50, 0);
		header.writeUInt16LE(20, 4); // version needed
		header.writeUInt16LE(0x0800, 6); // UTF-8 names
		header.writeUInt16LE(8, 8); // deflate
		header.writeUInt32LE(dosEpoch, 10);
		header.writeUInt32LE(checksum, 14);
		header.writeUInt32LE(compressed.length, 18);
		header.writeUInt32LE(entry.data.length, 22);
		header.writeUInt16LE(name.length, 26);
		local.push(header, name, compressed);
		const record = Buffer.alloc(46);
		record.writeUInt32LE(0x02014b50, 0);
		record.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
		record.writeUInt16LE(20, 6);
		record.writeUInt16LE(0x0800, 8);
		record.writeUInt16LE(8, 10);
		record.writeUInt32LE(dosEpoch, 12);
		record.writeUInt32LE(checksum, 16);
		record.writeUInt32LE(compressed.length, 20);
		record.writeUInt32LE(entry.data.length, 24);
		record.writeUInt16LE(name.length, 28);
		record.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
		record.writeUInt32LE(offset, 42);
		central.push(record, name);
		offset += header.length + name.length + compressed.length;
	}

	const directory = Buffer.concat(central);
	const end = Buffer.alloc(22);
	end.writeUInt32LE(0x06054b50, 0);
	end.writeUInt16LE(entries.length, 8);
	end.writeUInt16LE(entries.length, 10);
	end.writeUInt32LE(directory.length, 12);
	end.writeUInt32LE(offset, 16);
	return Buffer.concat([...local, directory, end]);
}
