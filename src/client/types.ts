/** Request and response types of every operation, taken from the OpenAPI documents' generated types. */
import type { components as Data, operations as DataOps } from '../http/generated/data.js';
import type { components as Control, operations as ControlOps } from '../http/generated/control.js';

type DataSchemas = Data['schemas'];
type ControlSchemas = Control['schemas'];

export type TaskRequest = DataSchemas['TaskRequest'];
export type Accepted = DataSchemas['Accepted'];
export type Session = DataSchemas['Session'];
export type TaskSummary = DataSchemas['TaskSummary'];
export type SessionList = DataSchemas['SessionList'];
export type SessionListQuery = NonNullable<DataOps['listSessions']['parameters']['query']>;
export type TaskList = DataSchemas['TaskList'];
export type TaskListQuery = NonNullable<DataOps['listTasks']['parameters']['query']>;
export type ErrorEnvelope = DataSchemas['ErrorEnvelope'];
export type ErrorCode = DataSchemas['ErrorCode'];
export type SseStarted = DataSchemas['SseStarted'];
export type SseToken = DataSchemas['SseToken'];
export type SseMetrics = DataSchemas['SseMetrics'];
export type SseEnd = DataSchemas['SseEnd'];
export type SseError = DataSchemas['SseError'];

export type DrainRequest = ControlSchemas['DrainRequest'];
export type ReloadRequest = ControlSchemas['ReloadRequest'];
export type OperationAccepted = ControlSchemas['OperationAccepted'];
export type PoolHealth = ControlSchemas['PoolHealth'];
export type ReplicaSets = ControlSchemas['ReplicaSets'];
export type ReplicaSet = ControlSchemas['ReplicaSet'];
export type NodeList = ControlSchemas['NodeList'];
export type NodeSummary = ControlSchemas['NodeSummary'];
export type Capabilities = ControlSchemas['Capabilities'];
export type CatalogModelRequest = ControlSchemas['CatalogModelRequest'];
export type CatalogModel = ControlSchemas['CatalogModel'];
export type CatalogModelList =
  ControlOps['listCatalogModels']['responses'][200]['content']['application/json'];
export type Verification = ControlSchemas['Verification'];
export type Plugin = ControlSchemas['Plugin'];
export type PluginList = ControlOps['listPlugins']['responses'][200]['content']['application/json'];
export type PluginReloadRequest = ControlSchemas['PluginReloadRequest'];
export type StateRequest = ControlSchemas['StateRequest'];
export type ArtifactRequest = ControlSchemas['ArtifactRequest'];
export type ArtifactRef = ControlSchemas['ArtifactRef'];
export type Artifact = ControlSchemas['Artifact'];
export type ArtifactList = ControlOps['listArtifacts']['responses'][200]['content']['application/json'];
export type ArtifactQuery = NonNullable<ControlOps['listArtifacts']['parameters']['query']>;
export type NodeReport = ControlSchemas['NodeReport'];
export type ToolFetchRequest = DataSchemas['ToolFetchRequest'];
export type ToolFetchResult = DataSchemas['ToolFetchResult'];
export type ToolSearchRequest = DataSchemas['ToolSearchRequest'];
export type ToolSearchResult = DataSchemas['ToolSearchResult'];
export type RegisterAnswer = ControlSchemas['RegisterAnswer'];
export type HeartbeatAnswer = ControlSchemas['HeartbeatAnswer'];

/** One event of a task's SSE stream, discriminated by its `event:` name. */
export type TaskEvent =
  | { readonly event: 'started'; readonly id: number; readonly data: SseStarted }
  | { readonly event: 'token'; readonly id: number; readonly data: SseToken }
  | { readonly event: 'metrics'; readonly id: number; readonly data: SseMetrics }
  | { readonly event: 'end'; readonly id: number; readonly data: SseEnd }
  | { readonly event: 'error'; readonly id: number; readonly data: SseError };

/** Keeps `DataOps` referenced so the generated operation map stays the source of these types. */
export type EnqueueResponse = DataOps['enqueueTask']['responses'][202]['content']['application/json'];
