//! The `gristmill` command-line tool: a thin edge over the library crates.

mod commands;
mod credit;
mod lm;
mod lmtrain;
mod output;
mod train;
mod tune;
mod verdicts;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Training allocates and frees per-step buffers of a few hundred kilobytes; glibc's
/// allocator hands them back to the kernel and faults them in again every step (about a
/// third of a README-example step was page faults). mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// gristmill: deterministic, measurable, trainable RL environments.
#[derive(Parser, Debug)]
#[command(name = "gristmill", version, about, long_about = None)]
struct Cli {
    /// SQLite run store (created if missing).
    #[arg(long, global = true, default_value = "gristmill.db")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Roll out (or train, when the spec names a trainable policy) and store the run.
    Run(commands::RunArgs),
    /// Check a spec and report every problem with its field path (exit 2 on problems).
    Validate {
        /// Spec file.
        spec: PathBuf,
    },
    /// List task families, their knobs and answer formats.
    Tasks,
    /// List piece kinds and their parameters.
    Pieces,
    /// List policy kinds and their parameters (`[policy.params]`: optimizer, checkpoints, credit).
    Policies,
    /// Re-execute a stored run and check it bit for bit (exit 1 on any difference).
    Replay(commands::ReplayArgs),
    /// Continue a stopped or killed training run from its last checkpoint.
    Resume {
        /// Run id.
        run_id: gristmill_store::RunId,
        /// Worker threads.
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Split a training run's gain among its pieces: in-run credit, Shapley, leave-one-out.
    Credit(credit::CreditArgs),
    /// Evaluate a language-model policy on a spec's gold suite: pass@1, pass@k, best-of-k, rollouts as JSONL.
    Eval(lm::EvalArgs),
    /// Serve a GGUF model in-process through an OpenAI-compatible chat-completions API.
    ServePolicy(lm::ServePolicyArgs),
    /// Serve environments over HTTP: sample tasks, score responses per piece, step episodes.
    Serve(commands::ServeArgs),
    /// Train with a piece, remove it, continue; compare with the run that never had it.
    Withdraw(tune::WithdrawArgs),
    /// Train all trainable pieces alone, in pairs and together; report gains and interference.
    Tune(tune::TuneArgs),
    /// Apply a trained piece (artifact) to another spec, a new seed and the other architecture.
    Transfer(tune::TransferArgs),
    /// List stored runs.
    Runs {
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run(&cli.db, args),
        Command::Validate { spec } => commands::validate(&spec),
        Command::Tasks => commands::tasks(),
        Command::Pieces => commands::pieces(),
        Command::Policies => commands::policies(),
        Command::Replay(args) => commands::replay(&cli.db, args),
        Command::Resume { run_id, threads, json } => {
            commands::resume(&cli.db, run_id, threads, json.as_deref())
        }
        Command::Credit(args) => credit::credit(&cli.db, args),
        Command::Eval(args) => lm::eval(&cli.db, args),
        Command::ServePolicy(args) => lm::serve_policy(args),
        Command::Serve(args) => commands::serve(args),
        Command::Withdraw(args) => tune::withdraw_cmd(&cli.db, args),
        Command::Tune(args) => tune::tune_cmd(&cli.db, args),
        Command::Transfer(args) => tune::transfer_cmd(&cli.db, args),
        Command::Runs { limit } => commands::runs(&cli.db, limit),
    };
    match result {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<output::Interrupted>() {
            // Not an error: the run stopped where it was asked to, and can be resumed.
            Some(stopped) => {
                eprintln!("{stopped}");
                ExitCode::from(130)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}
