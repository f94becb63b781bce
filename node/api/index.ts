export * from './server.js';
export * from './client.js';
export { chatCompletionRequestSchema } from './schema.js';
