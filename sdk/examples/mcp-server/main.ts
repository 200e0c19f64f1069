import { start } from './server.ts';

// ISSUER=http://localhost:3000 RESOURCE=http://localhost:4100/mcp PORT=4100 node sdk/examples/mcp-server/main.ts
const issuer = process.env.ISSUER;
if (!issuer) throw new Error('ISSUER (agent-idp PUBLIC_URL) is required');
const port = Number(process.env.PORT ?? 4100);
const server = await start({ issuer, resource: process.env.RESOURCE ?? `http://localhost:${port}/mcp`, port, host: process.env.HOST ?? '127.0.0.1' });
console.log(`MCP server at ${server.url}, metadata at ${server.metadataUrl}`);
