//! Starting and stopping qunfa: `serve` (the HTTP edge, the tracking-hit
//! writer, the bounce listener when configured, and the engine) and
//! `worker` (the engine and the bounce listener), made from the same pieces
//! and stopped the same way: every task they start is joined at shutdown.
//! This module sits above everything it starts; nothing imports it but the
//! command line and the tests.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::Config;

/// A running `serve` or `worker`.
pub struct Running {
    /// Where the HTTP edge listens (`serve`).
    pub addr: Option<SocketAddr>,
    /// Where the bounce listener listens, when it runs.
    pub bounce_addr: Option<SocketAddr>,
    pub app: App,
    /// Stops the HTTP edge, the bounce listener and the engine.
    stop: watch::Sender<bool>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    bounces: Option<JoinHandle<()>>,
    engine: Option<JoinHandle<()>>,
    /// The webhook dispatcher, beside the engine.
    webhooks: Option<JoinHandle<()>>,
    /// Stopped after the HTTP edge, so the hits of its last requests are written.
    hits_stop: watch::Sender<bool>,
    hits: Option<JoinHandle<()>>,
}

/// What a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub http: bool,
    /// Off in tests that drive the engine a step at a time ([`crate::engine::step`]).
    pub engine: bool,
}

impl Parts {
    pub const SERVE: Parts = Parts {
        http: true,
        engine: true,
    };
    pub const WORKER: Parts = Parts {
        http: false,
        engine: true,
    };
}

impl Running {
    /// `qunfa serve`: binds the listen address of the settings (port 0 picks
    /// a free port) and starts everything.
    pub async fn start(config: Config) -> anyhow::Result<Running> {
        Self::start_with(config, true).await
    }

    /// Like [`Running::start`]; without the engine when `engine` is false.
    pub async fn start_with(config: Config, engine: bool) -> anyhow::Result<Running> {
        Self::start_parts(config, Parts { http: true, engine }).await
    }

    /// Opens the application and starts `parts` of it.
    pub async fn start_parts(config: Config, parts: Parts) -> anyhow::Result<Running> {
        let listen = config.listen;
        let app = App::init(config).await?;
        let (stop, stopped) = watch::channel(false);
        let (hits_stop, hits_stopped) = watch::channel(false);
        let (mut addr, mut http, mut hits) = (None, None, None);
        if parts.http {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("invalid QUNFA_LISTEN: cannot listen on {listen}"))?;
            addr = Some(listener.local_addr()?);
            let mut http_stop = stopped.clone();
            http = Some(tokio::spawn(crate::http::serve(
                app.clone(),
                listener,
                async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                },
            )));
            let window = app.config.scanner_window.as_secs() as i64;
            let writer = app.clone();
            hits = Some(tokio::spawn(async move {
                crate::tracking::write_hits(writer.store.clone(), &writer.hits, window, hits_stopped).await;
            }));
        }
        let listener = crate::inbound::bind(&app).await?;
        let bounce_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let bounces = listener.map(|l| tokio::spawn(crate::inbound::run(app.clone(), l, stopped.clone())));
        let webhooks = parts
            .engine
            .then(|| tokio::spawn(crate::webhooks::run(app.clone(), stopped.clone())));
        let engine = parts
            .engine
            .then(|| tokio::spawn(crate::engine::run(app.clone(), stopped)));
        Ok(Running {
            addr,
            bounce_addr,
            app,
            stop,
            http,
            bounces,
            engine,
            webhooks,
            hits_stop,
            hits,
        })
    }

    /// The HTTP address of a `serve`.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr.expect("this process serves HTTP")
    }

    /// Stops accepting, lets requests in flight finish, writes the last
    /// tracking hits, stops the bounce listener and the engine, and closes
    /// the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        if let Some(http) = self.http {
            http.await??;
        }
        let _ = self.hits_stop.send(true);
        for task in [self.hits, self.bounces, self.engine, self.webhooks]
            .into_iter()
            .flatten()
        {
            task.await?;
        }
        self.app.store.close().await;
        Ok(())
    }
}
