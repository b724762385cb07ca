// A compressed block: codec byte, raw length, payload length, payload. Codecs are standard formats
// (RFC 7932 brotli, RFC 1951 raw deflate) so another implementation can decode them. The encoder tries
// both and keeps the smallest; the decoder caps the output at the announced raw length (no bombs).
// Node-only (node:zlib, node:crypto), hence protocol/node/: the webviews may not import it.
import { createHash } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { ByteReader, ByteWriter } from '../bytes';
import { ErrorCode, ProtocolError, errorMessage } from '../errors';

export const Codec = { None: 0, DeflateRaw: 1, Brotli: 2 } as const;
export type Codec = (typeof Codec)[keyof typeof Codec];

/**
 * The last blocks compressed, by content: a server sends one round's probabilities, and one catch-up
 * change per base round, to many clients, and brotli at quality 11 costs tens of milliseconds a block
 * while hashing it costs microseconds.
 */
const recent = new Map<string, { codec: Codec; payload: Uint8Array }>();
const RECENT_BLOCKS = 16;

function compressBest(raw: Uint8Array): { codec: Codec; payload: Uint8Array } {
  if (raw.length < 16) return { codec: Codec.None, payload: raw };
  const key = createHash('sha256').update(raw).digest('base64');
  const hit = recent.get(key);
  if (hit) return hit;
  const found = compressUncached(raw);
  // Kept apart from the caller's buffer, which it may reuse.
  const best = found.payload === raw ? { codec: found.codec, payload: Uint8Array.from(raw) } : found;
  recent.set(key, best);
  if (recent.size > RECENT_BLOCKS) recent.delete(recent.keys().next().value as string);
  return best;
}

function compressUncached(raw: Uint8Array): { codec: Codec; payload: Uint8Array } {
  let best: { codec: Codec; payload: Uint8Array } = { codec: Codec.None, payload: raw };
  if (raw.length < 16) return best;
  const brotli = brotliCompressSync(raw, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
  if (brotli.length < best.payload.length) best = { codec: Codec.Brotli, payload: brotli };
  const deflate = deflateRawSync(raw, { level: 9 });
  if (deflate.length < best.payload.length) best = { codec: Codec.DeflateRaw, payload: deflate };
  return best;
}

export function writeCompressed(w: ByteWriter, raw: Uint8Array): void {
  const { codec, payload } = compressBest(raw);
  w.u8(codec).u32(raw.length).u32(payload.length).bytes(payload);
}

export function readCompressed(r: ByteReader, maxRaw: number, what: string): Uint8Array {
  const codec = r.u8(`${what} codec`);
  const rawLength = r.u32(`${what} raw length`);
  const payloadLength = r.u32(`${what} payload length`);
  if (rawLength > maxRaw) throw new ProtocolError(ErrorCode.TooLarge, `${what} announces ${rawLength} raw bytes, at most ${maxRaw}`);
  const payload = r.bytes(payloadLength, `${what} payload`);
  let raw: Uint8Array;
  try {
    if (codec === Codec.None) raw = payload;
    else if (codec === Codec.Brotli) raw = brotliDecompressSync(payload, { maxOutputLength: Math.max(rawLength, 1) });
    else if (codec === Codec.DeflateRaw) raw = inflateRawSync(payload, { maxOutputLength: Math.max(rawLength, 1) });
    else throw new ProtocolError(ErrorCode.Malformed, `${what} uses unknown codec ${codec}`);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(ErrorCode.Malformed, `${what} does not decompress: ${errorMessage(err)}`);
  }
  if (raw.length !== rawLength) throw new ProtocolError(ErrorCode.Malformed, `${what} decompresses to ${raw.length} bytes, announced ${rawLength}`);
  return raw;
}
