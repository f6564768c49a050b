/**
 * Chat and sampling vocabulary of a task (SPEC §17, §2.1 additive). Types and pure helpers only.
 */

/** One chat turn, OpenAI's chat shape (text content; tool calls and results pass through). */
export interface ChatMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  /** Text; `null` only on an assistant turn that made tool calls. */
  readonly content: string | null;
  readonly name?: string;
  /** An assistant turn's tool calls, as the engine returned them. */
  readonly tool_calls?: readonly ToolCall[];
  /** A `tool` turn answers this call. */
  readonly tool_call_id?: string;
}

/** A function tool the model may call (OpenAI `tools[]` entry). */
export interface ToolDefinition {
  readonly type: 'function';
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters?: Readonly<Record<string, unknown>>;
    readonly strict?: boolean;
  };
}

/** `tool_choice`: OpenAI's shape. */
export type ToolChoice =
  'none' | 'auto' | 'required' | { readonly type: 'function'; readonly function: { readonly name: string } };

/** A call the model made: arguments are the JSON text the model wrote. */
export interface ToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; readonly arguments: string };
}

/** `response_format`: free text, any JSON object, or JSON matching a schema. */
export type ResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | {
      readonly type: 'json_schema';
      readonly json_schema: {
        readonly name?: string;
        readonly schema?: Readonly<Record<string, unknown>>;
        readonly strict?: boolean;
      };
    };

/**
 * Sampling fields a task may set. Absent fields take sampler profile v1's values
 * (`SAMPLER_V1`); a field that is present is honoured by the engine or refused at admission.
 */
export interface SamplingOptions {
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly repeatPenalty?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
}

/** Every sampling value an engine request carries (the task's, else the profile's). */
export type Sampling = Required<SamplingOptions>;

/** The wire name of each sampling field, for messages that name the field. */
export const SAMPLING_FIELDS: Readonly<Record<keyof SamplingOptions, string>> = {
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  repeatPenalty: 'repeat_penalty',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
};

/** Why generation ended, as `end.finish_reason` and OpenAI's `finish_reason` name it. */
export type FinishReason = 'stop' | 'length' | 'canceled' | 'tool_calls';

/** The chat and sampling fields of a task, as submitted (absent: profile v1, plain prompt). */
export interface GenerationFields {
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly sampling?: SamplingOptions | undefined;
  readonly stop?: readonly string[] | undefined;
  readonly responseFormat?: ResponseFormat | undefined;
  readonly tools?: readonly ToolDefinition[] | undefined;
  readonly toolChoice?: ToolChoice | undefined;
}
