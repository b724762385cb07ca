export * from './local-trainer';
export * from './federation-client';
