//! `gristmill eval` (language-model rollouts on a spec's gold suite) and
//! `gristmill serve-policy` (the in-process model behind an OpenAI-compatible API).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use gristmill_core::digest::Digest;
use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::Task;
use gristmill_engine::Environment;
use gristmill_lm::{ChatModel, ClientConfig, Generation, LocalModel, Message, OpenAiClient, SamplingParams};
use gristmill_store::{NewRun, Store};
use serde_json::{json, Value};

use crate::commands::{exit_for, load_spec, pool};
use crate::output::{num, table, write_json};

/// `gristmill eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Spec file (TOML); its gold suite (`[eval]`) is what gets evaluated.
    pub spec: PathBuf,
    /// `lm:PATH` (a llama-family GGUF model run in-process; `lm:` alone is the default model
    /// from scripts/fetch-model.sh) or `openai:URL` (an OpenAI-compatible server's base URL,
    /// e.g. `openai:http://127.0.0.1:8080/v1`).
    #[arg(long)]
    pub policy: String,
    /// Samples per task: pass@k and best-of-k use this k.
    #[arg(long, default_value_t = 4)]
    pub k: u32,
    /// Evaluate only the first N tasks of the suite (default: all `eval.size`).
    #[arg(long)]
    pub tasks: Option<u32>,
    /// Root seed of the sampling streams (default: the spec's `run.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Maximum new tokens per response.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// A stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// A system message (default: the chat template's own, if any).
    #[arg(long)]
    pub system: Option<String>,
    /// Model name sent to the server (`openai:` only).
    #[arg(long, default_value = "default")]
    pub model_name: String,
    /// Environment variable holding the API key (`openai:` only).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Seconds before one request times out (`openai:` only).
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Retries of a request that timed out or got 429/5xx (`openai:` only).
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Requests in flight at once (`openai:` only).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Write every rollout as a JSON line here, as it finishes. Re-running the same command
    /// with the same file skips the rollouts already in it.
    #[arg(long)]
    pub rollouts: Option<PathBuf>,
    /// Require the `--rollouts` file to exist and continue it.
    #[arg(long)]
    pub resume: bool,
    /// Also write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `gristmill serve-policy`.
#[derive(Args, Debug)]
pub struct ServePolicyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// GGUF model (default: `$GRISTMILL_MODEL`, else the model scripts/fetch-model.sh fetched).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Model name reported to clients (default: the file name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Requests computed at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

fn model_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => Ok(p),
        None => gristmill_lm::find_model().ok_or_else(|| {
            anyhow!(
                "no model given and the default model is not in the cache ({}); run scripts/fetch-model.sh \
                 or set GRISTMILL_MODEL",
                gristmill_lm::default_model_dir().map_or("~/.cache/gristmill/models".into(), |d| d
                    .join(gristmill_lm::DEFAULT_MODEL_FILE)
                    .display()
                    .to_string())
            )
        }),
    }
}

/// Builds the chat model a `--policy` names.
fn chat_model(args: &EvalArgs) -> anyhow::Result<Arc<dyn ChatModel>> {
    if let Some(path) = args.policy.strip_prefix("lm:") {
        let path = model_path(Some(PathBuf::from(path)))?;
        let model = LocalModel::load(&path)?;
        return Ok(Arc::new(model));
    }
    if let Some(url) = args.policy.strip_prefix("openai:") {
        if !(args.timeout.is_finite() && args.timeout > 0.0) {
            bail!("--timeout {} must be a positive number of seconds", args.timeout);
        }
        let mut config = ClientConfig::new(url);
        config.model = args.model_name.clone();
        config.api_key_env = args.api_key_env.clone();
        config.timeout = Duration::from_secs_f64(args.timeout);
        config.retries = args.retries;
        config.concurrency = args.concurrency;
        return Ok(Arc::new(OpenAiClient::new(config)?));
    }
    bail!("--policy `{}` must be `lm:PATH` or `openai:URL`", args.policy)
}

/// One finished rollout, as written to the JSONL file.
struct Rollout {
    sample: u32,
    response: String,
    rewards: Vec<f64>,
    gold: f64,
    parsed: bool,
    logprobs: Vec<f64>,
    tokens: usize,
}

impl Rollout {
    fn from_line(v: &Value, channels: usize) -> Option<Rollout> {
        let rewards: Vec<f64> =
            v.get("reward_vector")?.as_array()?.iter().map(Value::as_f64).collect::<Option<_>>()?;
        if rewards.len() != channels {
            return None;
        }
        Some(Rollout {
            sample: v.get("sample")?.as_u64()? as u32,
            response: v.get("response")?.as_str()?.to_string(),
            rewards,
            gold: v.get("gold")?.as_f64()?,
            parsed: v.get("answer").is_some_and(|a| !a.is_null()),
            logprobs: v.get("logprobs")?.as_array()?.iter().map(Value::as_f64).collect::<Option<_>>()?,
            tokens: v.get("tokens").and_then(Value::as_array).map_or(0, Vec::len),
        })
    }
}

/// Finished rollouts by (task key, sample).
type Finished = HashMap<(String, u32), Rollout>;

/// The JSONL file of rollouts: finished rollouts already in it, and an appender.
struct RolloutFile {
    path: PathBuf,
    file: std::fs::File,
}

impl RolloutFile {
    /// Opens (creating) the file, reads the rollouts of this eval already in it (keyed by
    /// task key and sample), and cuts off a torn last line.
    fn open(
        path: &Path,
        eval_id: &str,
        channels: usize,
        must_exist: bool,
    ) -> anyhow::Result<(RolloutFile, Finished)> {
        if must_exist && !path.is_file() {
            bail!("--resume: rollouts file {} does not exist", path.display());
        }
        let mut done = HashMap::new();
        let mut keep_len = 0u64;
        if path.is_file() {
            let f =
                std::fs::File::open(path).with_context(|| format!("reading rollouts {}", path.display()))?;
            let mut reader = std::io::BufReader::new(f);
            let mut line = String::new();
            let mut lineno = 0;
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .with_context(|| format!("reading rollouts {}", path.display()))?;
                if n == 0 || !line.ends_with('\n') {
                    break; // end, or a line torn by a kill mid-write: dropped
                }
                lineno += 1;
                let v: Value = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{lineno}: not a JSON line", path.display()))?;
                let id = v.get("eval_id").and_then(Value::as_str).unwrap_or("");
                if id != eval_id {
                    bail!(
                        "{}:{lineno} belongs to another evaluation (eval_id {id}, this one is {eval_id}: a different \
                         spec, seed, policy, k or sampling setting); use another --rollouts file",
                        path.display()
                    );
                }
                let task = v.get("task").and_then(Value::as_str).unwrap_or("").to_string();
                let r = Rollout::from_line(&v, channels)
                    .ok_or_else(|| anyhow!("{}:{lineno}: not a rollout line", path.display()))?;
                done.insert((task, r.sample), r);
                keep_len += n as u64;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening rollouts {}", path.display()))?;
        file.set_len(keep_len).with_context(|| format!("truncating a torn line in {}", path.display()))?;
        Ok((RolloutFile { path: path.to_path_buf(), file }, done))
    }

    fn append(&mut self, lines: &[Value]) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, l)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Rolls out the `k` samples of one task that are not done yet.
fn rollout_task(
    env: &Environment,
    model: &dyn ChatModel,
    messages: &[Message],
    params: &SamplingParams,
    seed: u64,
    position: u64,
    missing: &[u32],
) -> Result<Vec<Generation>, gristmill_lm::LmError> {
    let mut rngs: Vec<_> =
        missing.iter().map(|&j| stream(seed, Purpose::SAMPLE, position, j as u64)).collect();
    let _ = env;
    model.chat(messages, params, &mut rngs)
}

#[allow(clippy::too_many_arguments)]
fn score_line(
    env: &Environment,
    task: &Task,
    messages: &[Message],
    eval_id: &str,
    seed: u64,
    position: u64,
    sample: u32,
    g: &Generation,
) -> (Rollout, Value) {
    let source = env.sources[task.key.source as usize].as_ref();
    let response = Response::from_text(source, g.text.clone());
    let rewards = env.score(task, &response, ScoreKey { seed, step: position, index: sample as u64 });
    let gold = env.gold_score(task, &response);
    let ids = env.channel_ids();
    let named: serde_json::Map<String, Value> =
        ids.iter().cloned().zip(rewards.iter().map(|r| json!(r))).collect();
    let (answer, parse) = match &response.answer {
        Ok(v) => (json!(v), json!("ok")),
        Err(e) => (Value::Null, json!(e)),
    };
    let gold_answer = match &task.body.reference {
        Some(r) => r.gold.clone(),
        None => json!(task.gold()),
    };
    let mut line = json!({
        "eval_id": eval_id,
        "task": task.key.to_string(),
        "source": env.spec.spec().sources[task.key.source as usize].id,
        "family": source.family(),
        "sample": sample,
        "seed": seed,
        "messages": messages,
        "prompt": task.observation_text(),
        "response": g.text,
        "answer": answer,
        "parse": parse,
        "gold_answer": gold_answer,
        "gold": gold,
        "rewards": named,
        "reward_vector": rewards,
        "logprobs": g.logprobs,
        "tokens": g.tokens,
        "finish": g.finish,
        "prompt_tokens": g.prompt_tokens,
    });
    // A rubric judge's items, by piece: the parts of its channel.
    let parts = env.sub_scores(task, &response);
    if !parts.is_empty() {
        let by_piece: serde_json::Map<String, Value> = parts
            .into_iter()
            .map(|(id, items)| (id, Value::Object(items.into_iter().map(|(k, v)| (k, json!(v))).collect())))
            .collect();
        line["sub_rewards"] = Value::Object(by_piece);
    }
    let r = Rollout {
        sample,
        response: g.text.clone(),
        rewards,
        gold,
        parsed: response.answer.is_ok(),
        logprobs: g.logprobs.clone(),
        tokens: g.tokens.len(),
    };
    (r, line)
}

/// pass@1, pass@k and best-of-k under one scorer, over tasks with all `k` samples.
fn scorer_metrics(tasks: &[Vec<&Rollout>], score: impl Fn(&Rollout) -> f64) -> Value {
    let n = tasks.len().max(1) as f64;
    let mut mean = 0.0;
    let mut max = 0.0;
    let mut best = 0.0;
    for samples in tasks {
        let k = samples.len().max(1) as f64;
        mean += samples.iter().map(|r| score(r)).sum::<f64>() / k;
        max += samples.iter().map(|r| score(r)).fold(f64::NEG_INFINITY, f64::max).max(f64::MIN);
        // The sample this scorer ranks first (ties: lowest sample index), judged by gold.
        let chosen = samples.iter().fold(None::<&&Rollout>, |acc, r| match acc {
            Some(a) if score(a) >= score(r) => Some(a),
            _ => Some(r),
        });
        best += chosen.map_or(0.0, |r| r.gold);
    }
    json!({ "pass@1": mean / n, "pass@k": max / n, "best_of_k_gold": best / n })
}

pub fn eval(db: &Path, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let overrides = gristmill_core::spec::Overrides { seed: args.seed, steps: None };
    let (valid, text) = match load_spec(&args.spec, &overrides) {
        Ok(v) => v,
        Err(e) => return exit_for(e),
    };
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        // candle sizes its matmul pool from these on first use (results do not depend on it).
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
    let seed = valid.seed();
    let params = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_tokens,
        stop: args.stop.clone(),
    };
    params.validate()?;
    let (pool, threads) = pool(args.threads)?;
    let spec_hash = valid.hash().to_string();
    let spec_name = valid.spec().name.clone();
    let services = crate::verdicts::services(db, &valid)?;
    let env = pool.install(|| Environment::build_with(valid, &services))?;
    let mut suite = pool.install(|| env.eval_suite())?;
    if let Some(n) = args.tasks {
        if n == 0 {
            bail!("--tasks must be at least 1");
        }
        suite.truncate(n as usize);
    }
    let model = chat_model(&args)?;
    let policy = model.describe();
    let channels = env.channel_ids();
    let eval_id = {
        let mut d = Digest::new();
        d.str(&spec_hash).u64(seed).str(&policy).u64(args.k as u64).str(&serde_json::to_string(&params)?);
        d.str(args.system.as_deref().unwrap_or("")).str(&args.model_name);
        d.hex()[..16].to_string()
    };
    let config = json!({
        "policy": policy, "k": args.k, "tasks": suite.len(), "seed": seed, "sampling": params,
        "system": args.system, "rollouts": args.rollouts, "eval_id": eval_id,
    });
    let mut store = Store::open(db)?;
    store.put_spec(&spec_hash, &spec_name, &text)?;
    let run_id = store.create_run(&NewRun {
        kind: "eval".into(),
        spec_hash: spec_hash.clone(),
        seed,
        steps: suite.len() as u64,
        threads: threads as u32,
        config,
        parent: None,
    })?;

    let (mut file, mut done) = match &args.rollouts {
        Some(p) => {
            let (f, d) = RolloutFile::open(p, &eval_id, channels.len(), args.resume)?;
            (Some(f), d)
        }
        None if args.resume => bail!("--resume needs --rollouts"),
        None => (None, HashMap::new()),
    };
    let resumed = done.len();
    // A dataset task carries its chat messages (with the spec's system prompt, if any); an
    // integer task is one user message. `--system` goes first unless the task has its own.
    let messages_of = |task: &Task| {
        let mut m = Vec::new();
        let own: &[gristmill_core::task::ChatMessage] =
            task.body.reference.as_ref().map_or(&[], |r| r.messages.as_slice());
        if let Some(s) = &args.system {
            if own.first().is_none_or(|first| first.role != "system") {
                m.push(Message::system(s.clone()));
            }
        }
        if own.is_empty() {
            m.push(Message::user(task.observation_text()));
        } else {
            m.extend(own.iter().map(|c| Message { role: c.role.clone(), content: c.content.clone() }));
        }
        m
    };
    println!(
        "eval run {run_id}: {spec_name} (spec {}), {} tasks × k={} with {policy}, seed {seed}{}",
        &spec_hash[..12],
        suite.len(),
        args.k,
        if resumed > 0 { format!(", {resumed} rollouts resumed from the file") } else { String::new() }
    );
    // Tasks run one at a time in-process (candle parallelises inside), `concurrency` at a
    // time against a server; lines are written in task order as each chunk finishes.
    let chunk = if args.policy.starts_with("openai:") { args.concurrency.max(1) } else { 1 };
    let started = Instant::now();
    let mut new_tokens = 0usize;
    let mut new_rollouts = 0usize;
    let pb = crate::output::progress(suite.len() as u64, "eval");
    for (c, tasks) in suite.chunks(chunk).enumerate() {
        let jobs: Vec<(u64, &Task, Vec<u32>)> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = t.key.to_string();
                let missing = (0..args.k).filter(|j| !done.contains_key(&(key.clone(), *j))).collect();
                ((c * chunk + i) as u64, t, missing)
            })
            .collect();
        let results: Vec<Result<Vec<Generation>, gristmill_lm::LmError>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(pos, task, missing)| {
                    let (model, env, params, messages) = (model.as_ref(), &env, &params, messages_of(task));
                    s.spawn(move || {
                        if missing.is_empty() {
                            return Ok(Vec::new());
                        }
                        rollout_task(env, model, &messages, params, seed, *pos, missing)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new()))).collect()
        });
        let mut failure = None;
        for ((pos, task, missing), result) in jobs.iter().zip(results) {
            match result {
                Ok(gens) => {
                    let messages = messages_of(task);
                    let mut lines = Vec::with_capacity(gens.len());
                    for (&j, g) in missing.iter().zip(&gens) {
                        let (r, line) = score_line(&env, task, &messages, &eval_id, seed, *pos, j, g);
                        new_tokens += r.tokens;
                        new_rollouts += 1;
                        done.insert((task.key.to_string(), j), r);
                        lines.push(line);
                    }
                    if let Some(f) = file.as_mut() {
                        f.append(&lines)?;
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
            pb.inc(1);
        }
        if let Some(e) = failure {
            pb.finish();
            let kept = match &args.rollouts {
                Some(p) => format!(
                    "{} finished rollouts are kept in {}; re-run the same command to resume",
                    done.len(),
                    p.display()
                ),
                None => "pass --rollouts FILE to keep finished rollouts across failures".into(),
            };
            let msg = format!("{e}; {kept}");
            store.fail_run(run_id, &msg)?;
            bail!("eval run {run_id} stopped: {msg}");
        }
        store.set_progress(run_id, ((c + 1) * chunk).min(suite.len()) as u64)?;
    }
    pb.finish();
    let elapsed = started.elapsed().as_secs_f64();

    // Summaries, in suite order.
    let mut per_task: Vec<Vec<&Rollout>> = Vec::with_capacity(suite.len());
    let mut digest = Digest::new();
    for task in &suite {
        let key = task.key.to_string();
        let samples: Vec<&Rollout> = (0..args.k)
            .map(|j| done.get(&(key.clone(), j)).ok_or_else(|| anyhow!("rollout {key}/{j} missing")))
            .collect::<anyhow::Result<_>>()?;
        for r in &samples {
            digest.str(&key).u64(r.sample as u64).str(&r.response).f64s(&r.rewards).f64s(&r.logprobs);
        }
        per_task.push(samples);
    }
    let gold_metrics = scorer_metrics(&per_task, |r| r.gold);
    let mut pieces = serde_json::Map::new();
    for (c, id) in channels.iter().enumerate() {
        pieces.insert(id.clone(), scorer_metrics(&per_task, |r| r.rewards[c]));
    }
    let mut by_source: BTreeMap<String, Vec<Vec<&Rollout>>> = BTreeMap::new();
    for (task, samples) in suite.iter().zip(&per_task) {
        let id = env.spec.spec().sources[task.key.source as usize].id.clone();
        by_source.entry(id).or_default().push(samples.clone());
    }
    let sources: serde_json::Map<String, Value> = by_source
        .iter()
        .map(|(id, t)| (id.clone(), json!({ "tasks": t.len(), "gold": scorer_metrics(t, |r| r.gold) })))
        .collect();
    let all: Vec<&Rollout> = per_task.iter().flatten().copied().collect();
    let parse_rate = all.iter().filter(|r| r.parsed).count() as f64 / all.len().max(1) as f64;
    let mean_tokens = all.iter().map(|r| r.tokens as f64).sum::<f64>() / all.len().max(1) as f64;
    let digest = digest.hex();
    let summary = json!({
        "run_id": run_id.0,
        "spec_hash": spec_hash,
        "policy": policy,
        "seed": seed,
        "k": args.k,
        "tasks": suite.len(),
        "rollouts": all.len(),
        "resumed_rollouts": resumed,
        "sampling": params,
        "parse_rate": parse_rate,
        "mean_response_tokens": mean_tokens,
        "gold": gold_metrics,
        "pieces": pieces,
        "sources": sources,
        "digest": digest,
        "eval_id": eval_id,
        "throughput": {
            "seconds": elapsed,
            "new_rollouts": new_rollouts,
            "rollouts_per_second": new_rollouts as f64 / elapsed.max(1e-9),
            "tokens_per_second": new_tokens as f64 / elapsed.max(1e-9),
        },
    });
    store.put_result(run_id, "eval", &summary)?;
    store.finish_run(run_id, &digest, &summary)?;

    let mut t = table(&[
        "scorer",
        "pass@1 (mean)",
        &format!("pass@{} (max)", args.k),
        &format!("best-of-{} gold", args.k),
    ]);
    let rows = std::iter::once(("(gold)", &summary["gold"]))
        .chain(channels.iter().map(|id| (id.as_str(), &summary["pieces"][id])));
    for (name, m) in rows {
        t.add_row(vec![
            comfy_table::Cell::new(name),
            num(m["pass@1"].as_f64(), 4),
            num(m["pass@k"].as_f64(), 4),
            num(m["best_of_k_gold"].as_f64(), 4),
        ]);
    }
    println!("{t}");
    println!(
        "{} rollouts ({} new in {elapsed:.1}s, {:.2} rollouts/s), answers parsed {:.1}%, mean {:.1} response tokens",
        all.len(),
        new_rollouts,
        new_rollouts as f64 / elapsed.max(1e-9),
        100.0 * parse_rate,
        mean_tokens
    );
    if let Some(p) = &args.rollouts {
        println!("rollouts: {}", p.display());
    }
    println!("digest {digest}");
    if let Some(path) = &args.json {
        write_json(path, &summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn serve_policy(args: ServePolicyArgs) -> anyhow::Result<ExitCode> {
    let path = model_path(args.model)?;
    let model = LocalModel::load(&path)?;
    let name = args.model_name.unwrap_or_else(|| model.name());
    let config = gristmill_lm::ServeConfig {
        addr: args.addr,
        model_name: name.clone(),
        concurrency: args.concurrency,
    };
    gristmill_lm::serve(Arc::new(model), config, |addr| {
        println!(
            "serving {name} ({}) at http://{addr}/v1 (OpenAI-compatible chat completions; Ctrl-C stops)",
            path.display()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
