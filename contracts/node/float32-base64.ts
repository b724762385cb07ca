// The seed probabilities' wire form on the trainer → extension door: float32, little-endian, base64.
// Node-only (Buffer); the webview decodes it with atob in webview/dashboard/seeds.ts.
export function encodeFloat32Base64(values: ArrayLike<number>): string {
  const array = Float32Array.from(values);
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
}
