// The federation's wire protocol, shared by the server (federation/) and the client (federation/client/).
export * from './errors';
export * from './messages';
export * from './codec';
export * from './coefficients';
export { EXACT_LIMIT, ZQ_MAX_ABS, sumAbs } from './exact-range';
export * from './probabilities';
export { seedIndexBits, packIndices, unpackIndices } from './seed-packing';
export { MAX_VARINT_MAGNITUDE } from './varint';
export { wsFrameBytes, fedAvgBytesPerClient, type ClientBytes } from './wire-bytes';
