// The federation's wire protocol, shared by the server (federation/) and the client (federation/client/).
// The frames' binary codec is Node-only (node:zlib) and lives in protocol/node/codec.ts, outside this index,
// so that what the webviews may import stays free of Node.
export * from './errors';
export * from './messages';
export * from './coefficients';
export { EXACT_LIMIT, RANK1_MAX_ABS, ZQ_MAX_ABS, maxTableValue, sumAbs } from './exact-range';
export * from './probabilities';
export { seedIndexBits, packIndices, unpackIndices } from './seed-packing';
export { MAX_VARINT_MAGNITUDE } from './varint';
export { wsFrameBytes, fedAvgBytesPerClient, type ClientBytes } from './wire-bytes';
