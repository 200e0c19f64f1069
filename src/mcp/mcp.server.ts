import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { CallerFacts, OperationDispatch } from './dispatch.ts';
import { TOOLS, inputSchema, pathParams, type ToolDefinition } from './tools.ts';

// The MCP server of one /mcp request (stateless: built per request, for its caller). The low-level
// Server takes JSON Schema as it is, so each tool's input schema is the OpenAPI request schema.

const TOOL_LIST = TOOLS.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: inputSchema(tool), annotations: tool.annotations }));
const BY_NAME = new Map(TOOLS.map((tool) => [tool.name, tool]));

function refused(detail: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: detail }] };
}

interface Problem {
  detail?: string;
  errors?: { field: string; message: string }[];
}

/** Runs the tool's route; its problem (4xx/5xx) becomes a tool error with the problem's detail. */
async function callTool(tool: ToolDefinition, args: Record<string, unknown>, dispatch: OperationDispatch, caller: CallerFacts): Promise<CallToolResult> {
  const params = pathParams(tool);
  let path = tool.path;
  for (const name of params) {
    const value = args[name];
    if (typeof value !== 'string' || value === '') return refused(`the argument ${name} is required: a string`);
    path = path.replace(`{${name}}`, encodeURIComponent(value));
  }
  const rest = Object.fromEntries(Object.entries(args).filter(([key]) => !params.includes(key)));
  if (!tool.input && Object.keys(rest).length) return refused(`${Object.keys(rest).join(', ')}: not an argument of ${tool.name}`);

  let body: unknown = tool.fixedBody;
  let query: URLSearchParams | undefined;
  if (tool.input?.in === 'body') body = rest;
  if (tool.input?.in === 'query') {
    query = new URLSearchParams();
    for (const [key, value] of Object.entries(rest)) if (value !== undefined && value !== null) query.set(key, String(value));
  }
  const answer = await dispatch({ method: tool.method, path, query, body }, caller);
  if (answer.status >= 400) {
    const problem = (answer.body ?? {}) as Problem;
    const fields = problem.errors?.map((e) => `${e.field} ${e.message}`).join('; ');
    return refused(`${problem.detail ?? `status ${answer.status}`}${fields && !problem.detail?.includes(fields) ? ` (${fields})` : ''}`);
  }
  if (answer.body === undefined || answer.body === null || answer.body === '') return { content: [{ type: 'text', text: tool.noContent ?? 'done' }] };
  const json = answer.body as Record<string, unknown>;
  return { structuredContent: json, content: [{ type: 'text', text: JSON.stringify(json, null, 2) }] };
}

export function mcpServer(dispatch: OperationDispatch, caller: CallerFacts, version: string): Server {
  const server = new Server({ name: 'agent-idp', version }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOL_LIST }));
  server.setRequestHandler(CallToolRequestSchema, (request) => {
    const tool = BY_NAME.get(request.params.name);
    if (!tool) return refused(`no tool ${request.params.name.slice(0, 64)}`);
    return callTool(tool, request.params.arguments ?? {}, dispatch, caller);
  });
  return server;
}
