/**
 * Loading the embedded llama.cpp engine: node-llama-cpp is imported dynamically (it is an
 * optional dependency: a node without it still starts, and this backend's error says how to
 * enable it), the prebuilt binary is loaded without building or downloading anything, and
 * each GGUF file gets one context with `sequences` parallel sequences.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type * as NodeLlamaCppModule from 'node-llama-cpp';
import type { ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import type { Logger } from '../log.js';
import { LLAMA_CPP_MAX_MODELS, defaultThreads } from './llama-cpp-config.js';
import type { LlamaCppConfig } from './llama-cpp-config.js';
import { BackendError } from './types.js';
import { GgufError, readGgufHeader } from './llama-cpp-gguf.js';

/**
 * Bytes of a model file read to check its GGUF header before llama.cpp sees it (node-llama-cpp
 * hangs on some garbage instead of failing). 32 MiB holds the metadata of any real model
 * (a 150k-token vocabulary is ~4 MB); metadata running past it is accepted unread.
 */
const GGUF_CHECK_BYTES = 32 * 1024 * 1024;

/** Throws a named error unless the file starts as a GGUF v3 file with readable metadata. */
export async function checkGgufFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = new Uint8Array(Math.min(size, GGUF_CHECK_BYTES));
    await fh.read(buf, 0, buf.length, 0);
    try {
      readGgufHeader(buf);
    } catch (e) {
      const cutByWindow = e instanceof GgufError && /truncated/.test(e.message) && size > buf.length;
      if (!cutByWindow) throw e;
    }
  } finally {
    await fh.close();
  }
}

export type NodeLlamaCpp = typeof NodeLlamaCppModule;

export const LLAMA_CPP_PACKAGE = 'node-llama-cpp';
export const LLAMA_CPP_VERSION = '3.22.1';
export const LLAMA_CPP_ENABLE_HINT = `install the optional package: NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install ${LLAMA_CPP_PACKAGE}@${LLAMA_CPP_VERSION} (its prebuilt CPU binary comes in @node-llama-cpp/linux-x64)`;

/** Import node-llama-cpp (or `pkg`, for tests), or a clear error naming how to enable it. */
export async function importNodeLlamaCpp(pkg: string = process.env['FEDNODE_LLAMA_CPP_PACKAGE'] ?? LLAMA_CPP_PACKAGE): Promise<NodeLlamaCpp> {
  try {
    return (await import(pkg)) as NodeLlamaCpp;
  } catch (e) {
    throw new BackendError('ERR_BACKEND_CONFIG', `the llama-cpp backend needs ${LLAMA_CPP_PACKAGE}, which is not installed here (${pkg}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}): ${LLAMA_CPP_ENABLE_HINT}`, { package: pkg }, { cause: e });
  }
}

export interface ModelFile {
  id: string;
  path: string;
}

/** The GGUF files a config names: `models` in order, then `modelsDir`'s *.gguf sorted by name. Ids must be unique. */
export async function modelFiles(cfg: LlamaCppConfig, baseDir: string): Promise<ModelFile[]> {
  const out: ModelFile[] = cfg.models.map((m) => {
    const path = resolve(baseDir, typeof m === 'string' ? m : m.path);
    const id = typeof m === 'string' || m.id === undefined ? basename(path).replace(/\.gguf$/i, '') : m.id;
    return { id, path };
  });
  if (cfg.modelsDir !== null) {
    const dir = resolve(baseDir, cfg.modelsDir);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.gguf')).sort();
    } catch (e) {
      throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: modelsDir ${dir} cannot be read: ${e instanceof Error ? e.message : String(e)}`, { dir }, { cause: e });
    }
    for (const n of names) out.push({ id: n.replace(/\.gguf$/i, ''), path: join(dir, n) });
  }
  if (out.length === 0) throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: no GGUF model found (models is empty and modelsDir has no *.gguf)`, { id: cfg.id });
  if (out.length > LLAMA_CPP_MAX_MODELS) throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: ${out.length} models, at most ${LLAMA_CPP_MAX_MODELS}`, { count: out.length });
  const seen = new Set<string>();
  for (const m of out) {
    if (seen.has(m.id)) throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: two models have the id ${m.id} (give one an explicit { path, id })`, { model: m.id });
    seen.add(m.id);
  }
  return out;
}

export interface LoadedModel {
  readonly id: string;
  readonly path: string;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  /** Free sequences (all `sequences` are made at load; a request takes one and clears it when done). */
  readonly pool: LlamaContextSequence[];
  /**
   * The chat template, resolved once from the GGUF (node-llama-cpp's 'auto' resolution parses the
   * Jinja template: ~300 ms per LlamaChat on this machine, more than a short reply takes).
   */
  readonly chatWrapper: ChatWrapper;
  /** Made on first embeddings request. */
  embedding: Promise<LlamaEmbeddingContext> | null;
}

export interface Engine {
  readonly lib: NodeLlamaCpp;
  readonly llama: Llama;
  readonly models: ReadonlyMap<string, LoadedModel>;
  /** 'cuda' / 'vulkan' / 'metal' when a GPU build loaded, else 'cpu'. */
  readonly device: string;
  readonly threads: number;
}

/** Load the binary and every model. Anything that fails names the file and the reason. */
export async function loadEngine(cfg: LlamaCppConfig, baseDir: string, log: Logger): Promise<Engine> {
  const files = await modelFiles(cfg, baseDir);
  for (const f of files) {
    const s = await stat(f.path).catch(() => null);
    if (s === null || !s.isFile()) throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: model file ${f.path} does not exist`, { path: f.path });
    try {
      await checkGgufFile(f.path);
    } catch (e) {
      throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: ${f.path} is not a loadable GGUF model: ${e instanceof Error ? e.message : String(e)}`, { path: f.path }, { cause: e });
    }
  }
  const lib = await importNodeLlamaCpp();
  const threads = cfg.threads ?? defaultThreads();
  let llama: Llama;
  try {
    llama = await lib.getLlama({
      gpu: cfg.gpu,
      build: 'never', // never compile or download at run time: the prebuilt binaries are the only ones used
      logLevel: lib.LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text !== '') log.debug('llama.cpp', { level, message: text.slice(0, 500) });
      },
    });
  } catch (e) {
    throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: no prebuilt llama.cpp binary loads for gpu=${String(cfg.gpu)}: ${e instanceof Error ? e.message : String(e)}`, { gpu: cfg.gpu }, { cause: e });
  }
  const device = llama.gpu === false ? 'cpu' : llama.gpu;
  if (device === 'cpu') log.info(cfg.gpu === false ? 'llama-cpp: CPU only (gpu: false in config)' : 'llama-cpp: no GPU build loaded (CUDA/Vulkan), running on CPU', { backend: cfg.id, threads });
  else log.info(`llama-cpp: ${device} build loaded, offloading layers to the GPU`, { backend: cfg.id, gpuLayers: cfg.gpuLayers ?? 'auto' });
  const models = new Map<string, LoadedModel>();
  try {
    for (const f of files) {
      let model: LlamaModel;
      try {
        model = await llama.loadModel({ modelPath: f.path, gpuLayers: cfg.gpuLayers ?? 'auto' });
      } catch (e) {
        throw new BackendError('ERR_BACKEND_CONFIG', `llama-cpp backend ${cfg.id}: ${f.path} is not a loadable GGUF model: ${e instanceof Error ? e.message : String(e)}`, { path: f.path }, { cause: e });
      }
      const context = await model.createContext({ contextSize: cfg.contextSize, sequences: cfg.sequences, threads });
      const pool = Array.from({ length: cfg.sequences }, () => context.getSequence());
      const probe = new lib.LlamaChat({ contextSequence: pool[0] as LlamaContextSequence, autoDisposeSequence: false });
      const chatWrapper = probe.chatWrapper;
      probe.dispose();
      models.set(f.id, { id: f.id, path: f.path, model, context, pool, chatWrapper, embedding: null });
      log.info('llama-cpp: chat template', { model: f.id, wrapper: chatWrapper.wrapperName });
      log.info('llama-cpp: model loaded', { backend: cfg.id, model: f.id, path: f.path, contextSize: context.contextSize, sequences: cfg.sequences });
    }
  } catch (e) {
    await llama.dispose().catch(() => undefined);
    throw e;
  }
  return { lib, llama, models, device, threads };
}
