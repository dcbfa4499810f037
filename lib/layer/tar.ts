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

/** A header block with the fields entries share (mode, owner, mtime, type, names), and the sum of its bytes. */
interface Template {
    block: Buffer;
    sum: number;
}

/** Templates by their fields: a layer's entries share a few (one per mode, owner and type). */
const templates = new Map<string, Template>();

/** The header block of `h` without its name, size, link name, prefix and checksum (zeros there). */
function templateOf(h: TarHeader, typeflag: number): Template {
    const key = `${h.mode & 0o7777} ${h.uid} ${h.gid} ${h.mtime} ${typeflag} ${h.uname ?? ""} ${h.gname ?? ""}`;
    let t = templates.get(key);
    if (t === undefined) {
        const block = Buffer.alloc(BLOCK);
        block.write(octal(h.mode & 0o7777, 6), 100, "latin1");
        block.write(octal(h.uid, 6), 108, "latin1");
        block.write(octal(h.gid, 6), 116, "latin1");
        block.write(octal(h.mtime, 11), 136, "latin1");
        block[156] = 0x30 + typeflag;
        block.write("ustar\0" + "00", 257, "latin1");
        if (h.uname) block.write(h.uname, 265, "utf8");
        if (h.gname) block.write(h.gname, 297, "utf8");
        block.write(octal(0, 6), 329, "latin1");
        block.write(octal(0, 6), 337, "latin1");
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += block[i];
        t = { block, sum };
        if (templates.size >= 64) templates.clear(); // a bound: layers have a handful
        templates.set(key, t);
    }
    return t;
}

/**
 * Writes the 512 bytes at `off` of `buf`: the header of `h` under `name`/`linkname`/`typeflag`.
 * The fields entries share come from a template (a copy), the rest is written into it.
 */
function fill(buf: Buffer, off: number, h: TarHeader, name: string, prefix: string, linkname: string | undefined, typeflag: number, size: number): void {
    const t = templateOf(h, typeflag);
    t.block.copy(buf, off);
    // The checksum is the sum of the header's bytes (its own field as spaces): the template's,
    // plus the fields written here over its zeros.
    let sum = t.sum + 8 * 32;
    const add = (at: number, n: number): void => {
        for (let i = off + at; i < off + at + n; i++) sum += buf[i];
    };
    add(0, buf.write(name, off, "utf8"));
    writeSize(size, buf, off + 124);
    add(124, 12);
    if (linkname) add(157, buf.write(linkname, off + 157, "utf8"));
    if (prefix) add(345, buf.write(prefix, off + 345, "utf8"));
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
