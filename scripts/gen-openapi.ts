import type { GeneratedFile } from './gen.js';

/** Placeholder until the OpenAPI documents land: generates nothing. */
export async function generateOpenApiTypes(_root: string): Promise<GeneratedFile[]> {
  return [];
}
