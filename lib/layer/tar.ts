/**
 * Tar headers of a layer, byte for byte the format thinlayer's layers have always had (the one
 * tar-stream 3 writes, which built them until the writer wrote its tar itself): POSIX ustar with
 * a `prefix` split for long names, and a PAX header (a `path=`/`linkpath=` record) for what ustar
 * cannot hold: non-ASCII names, a name with no split into 155 + 100 bytes, a link target over
 * 100 bytes. Part of the reproducibility contract (the same entries give the same bytes, so the
 * same digests across thinlayer versions): tests/lib/layer.test.ts checks it against tar-stream.
 */

export const BLOCK = 512;

/** One entry's header fields (mtime in whole seconds). */
export interface TarHeader {
    name: string;
    type: "file" | "directory" | "symlink";
    mode: number;
    uid: number;
    gid: number;
    size: number;
    mtime: number;
    linkname?: string;
    uname?: string;
    gname?: string;
}

const TYPEFLAG = { file: 0, directory: 5, symlink: 2, pax: 72 } as const;

/** `val` in octal, zero-padded to `n` digits and a space (all 7s when it does not fit). */
function octal(val: number, n: number): string {
    const s = val.toString(8);
    return s.length > n ? "7".repeat(n) + " " : "0".repeat(n - s.length) + s + " ";
}

/** The size field: 11 octal digits, or base-256 (a leading 0x80) beyond 8 GiB. */
function writeSize(num: number, buf: Buffer, off: number): void {
    if (num.toString(8).length <= 11) {
        buf.write(octal(num, 11), off, "latin1");
        return;
    }
    buf[off] = 0x80;
    for (let i = 11; i > 0; i--) {
        buf[off + i] = num & 0xff;
        num = Math.floor(num / 0x100);
    }
}

/** Writes the 512 bytes at `off` of `buf`: the header of `h` under `name`/`linkname`/`typeflag`. */
function fill(buf: Buffer, off: number, h: TarHeader, name: string, prefix: string, linkname: string | undefined, typeflag: number, size: number): void {
    buf.fill(0, off, off + BLOCK);
    // The checksum is the sum of the header's bytes (its own field as spaces): summed as the
    // fields are written, the zeros between them add nothing.
    let sum = 8 * 32;
    const put = (text: string, at: number, encoding: BufferEncoding = "latin1") => {
        const n = buf.write(text, off + at, encoding);
        for (let i = off + at; i < off + at + n; i++) sum += buf[i];
    };
    put(name, 0, "utf8");
    put(octal(h.mode & 0o7777, 6), 100);
    put(octal(h.uid, 6), 108);
    put(octal(h.gid, 6), 116);
    writeSize(size, buf, off + 124);
    for (let i = off + 124; i < off + 136; i++) sum += buf[i];
    put(octal(h.mtime, 11), 136);
    buf[off + 156] = 0x30 + typeflag;
    sum += buf[off + 156];
    if (linkname) put(linkname, 157, "utf8");
    put("ustar\0" + "00", 257);
    if (h.uname) put(h.uname, 265, "utf8");
    if (h.gname) put(h.gname, 297, "utf8");
    put(octal(0, 6), 329);
    put(octal(0, 6), 337);
    if (prefix) put(prefix, 345, "utf8");
    buf.write(octal(sum, 6), off + 148, "latin1");
}

/** The ustar name/prefix split of `name`, or undefined when ustar cannot hold it (a PAX header then). */
function ustarName(name: string): { name: string; prefix: string } | undefined {
    if (Buffer.byteLength(name) !== name.length) return undefined; // non-ASCII
    let prefix = "";
    while (name.length > 100) {
        const i = name.indexOf("/");
        if (i === -1) return undefined;
        prefix += prefix ? "/" + name.slice(0, i) : name.slice(0, i);
        name = name.slice(i + 1);
    }
    return name.length > 100 || prefix.length > 155 ? undefined : { name, prefix };
}

/** A PAX record: its length in decimal (counting itself), then ` key=value\n`. */
function paxRecord(text: string): string {
    const len = Buffer.byteLength(text);
    let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
    if (len + digits >= Math.pow(10, digits)) digits++;
    return `${len + digits}${text}`;
}

/**
 * How many bytes the header blocks of `h` take (512, or a PAX header with its records and the
 * entry's own header): what to reserve before the entry's data.
 */
export function headerBytes(h: TarHeader): number {
    const pax = paxData(h);
    return pax === undefined ? BLOCK : BLOCK + padded(pax.length) + BLOCK;
}

function paxData(h: TarHeader): Buffer | undefined {
    const split = ustarName(h.name);
    if (split !== undefined && !(h.linkname && Buffer.byteLength(h.linkname) > 100)) return undefined;
    let text = paxRecord(` path=${h.name}\n`);
    if (h.linkname) text += paxRecord(` linkpath=${h.linkname}\n`);
    return Buffer.from(text);
}

/** `n` rounded up to whole blocks. */
export function padded(n: number): number {
    return Math.ceil(n / BLOCK) * BLOCK;
}

/**
 * Writes the header blocks of `h` (headerBytes(h) bytes) at `off` of `buf`. The entry's data, then
 * zeros to the next block, follow.
 */
export function writeHeader(buf: Buffer, off: number, h: TarHeader): void {
    const size = h.type === "file" ? h.size : 0;
    const pax = paxData(h);
    if (pax === undefined) {
        const split = ustarName(h.name) as { name: string; prefix: string };
        fill(buf, off, h, split.name, split.prefix, h.linkname, TYPEFLAG[h.type], size);
        return;
    }
    // A "PaxHeader" entry with the records, then the entry itself, also named "PaxHeader" (the
    // PAX records give readers its real name and link).
    const link = h.linkname ? "PaxHeader" : undefined;
    fill(buf, off, h, "PaxHeader", "", link, TYPEFLAG.pax, pax.length);
    buf.fill(0, off + BLOCK, off + BLOCK + padded(pax.length));
    pax.copy(buf, off + BLOCK);
    fill(buf, off + BLOCK + padded(pax.length), h, "PaxHeader", "", link, TYPEFLAG[h.type], size);
}

/** The two zero blocks that end a tar. */
export const END_OF_TAR = 2 * BLOCK;
