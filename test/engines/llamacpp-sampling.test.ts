/**
 * The task's chat and sampling fields on llama.cpp's wire (SPEC §17): `/completion` parameters,
 * the chat route for tools, and the refusals of what a server cannot honour.
 */
import { describe, expect, it } from 'vitest';
import type { GenerateRequest } from '../../src/engines/adapter.js';
import {
  checkLlamaRequest,
  toChatRequest,
  toCompletionRequest,
} from '../../src/engines/llamacpp/map-request.js';
import { OrchError } from '../../src/errors/orch-error.js';

const base: GenerateRequest = {
  prompt: 'Hello',
  maxTokens: 8,
  seed: 7,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

describe('llama.cpp request mapping', () => {
  it('without task fields the request is profile v1, exactly as before', () => {
    expect(JSON.stringify(toCompletionRequest(base))).toBe(
      '{"prompt":"Hello","n_predict":8,"stream":true,"return_tokens":true,"seed":7,"temperature":0.8,"top_k":40,"top_p":0.95,"min_p":0,"repeat_penalty":1,"cache_prompt":true,"ignore_eos":false,"id_slot":-1}',
    );
  });

  it('every sampling field the task sets reaches its llama.cpp parameter', () => {
    const r = toCompletionRequest({
      ...base,
      sampling: {
        temperature: 0.1,
        topP: 0.5,
        topK: 3,
        minP: 0.05,
        repeatPenalty: 1.2,
        presencePenalty: 0.4,
        frequencyPenalty: -0.3,
      },
      stop: ['\n\n', 'END'],
    });
    expect(r).toMatchObject({
      temperature: 0.1,
      top_p: 0.5,
      top_k: 3,
      min_p: 0.05,
      repeat_penalty: 1.2,
      presence_penalty: 0.4,
      frequency_penalty: -0.3,
      stop: ['\n\n', 'END'],
    });
  });

  it('response formats become a JSON schema the server turns into a grammar', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    expect(
      toCompletionRequest({
        ...base,
        responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema } },
      }).json_schema,
    ).toEqual(schema);
    expect(toCompletionRequest({ ...base, responseFormat: { type: 'json_object' } }).json_schema).toEqual({
      type: 'object',
    });
    expect(toCompletionRequest({ ...base, responseFormat: { type: 'text' } }).json_schema).toBeUndefined();
  });

  it('tools go to the chat route with the same sampling and the tool choice', () => {
    const tools = [{ type: 'function' as const, function: { name: 'w', parameters: { type: 'object' } } }];
    const r = toChatRequest({
      ...base,
      prompt: '',
      messages: [{ role: 'user', content: 'hi' }],
      tools,
      toolChoice: 'required',
      sampling: { temperature: 0.3 },
    });
    expect(r).toMatchObject({
      messages: [{ role: 'user', content: 'hi' }],
      tools,
      tool_choice: 'required',
      temperature: 0.3,
      top_k: 40,
      seed: 7,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r).not.toHaveProperty('prompt');
    expect(r).not.toHaveProperty('n_predict');
  });

  it('tools are refused by name where the server cannot call them', () => {
    const req: GenerateRequest = {
      ...base,
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'w' } }],
    };
    expect(() => checkLlamaRequest(req, true, true)).not.toThrow();
    const refusal = (jinja: boolean, caps: boolean | undefined): OrchError => {
      try {
        checkLlamaRequest(req, jinja, caps);
      } catch (err) {
        return err as OrchError;
      }
      throw new Error('not refused');
    };
    for (const e of [refusal(false, true), refusal(true, false), refusal(true, undefined)]) {
      expect(e.code).toBe('INVALID_PARAMS');
      expect(e.engine).toBe('llamacpp');
      expect(e.message).toMatch(/^tools: engine 'llamacpp' cannot honour it/);
    }
    expect(refusal(false, true).message).toContain('--no-jinja');
    expect(refusal(true, false).message).toContain('chat_template_caps');
    // Everything else llama.cpp honours.
    expect(() =>
      checkLlamaRequest(
        {
          ...base,
          sampling: { minP: 0.1, presencePenalty: 1 },
          stop: ['x'],
          responseFormat: { type: 'json_object' },
        },
        true,
        false,
      ),
    ).not.toThrow();
  });
});
