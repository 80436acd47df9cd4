//! Moves of credits, each with its ledger row, on the caller's transaction:
//! what task writes, outcomes, late bounces and service changes share.

use super::conn::Conn;
use super::{Arg, StoreError};
use crate::domain::accounts::{LedgerEntry, LedgerKind};
use crate::domain::ids::{CustomerId, TaskId};
use crate::domain::storage::Refusal;

/// Writes one credit-ledger row (every change to credits is one).
pub(crate) async fn ledger_row(
    c: &mut impl Conn,
    customer: CustomerId,
    e: &LedgerEntry,
) -> Result<(), sqlx::Error> {
    c.execute(
        "INSERT INTO credit_ledger (customer_id, at, kind, amount, balance, task_id, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Arg::Int(customer.get()),
            Arg::Int(e.at),
            Arg::Text(e.kind.as_str()),
            Arg::Int(e.amount),
            Arg::Int(e.balance),
            Arg::OptInt(e.task_id.map(TaskId::get)),
            Arg::Text(&e.reason),
        ],
    )
    .await?;
    Ok(())
}

/// Adds `amount` credits (negative: takes them) to a service, unchecked,
/// and records why; returns the balance after it.
pub(crate) async fn add_credits(
    c: &mut impl Conn,
    customer: CustomerId,
    task: Option<TaskId>,
    kind: LedgerKind,
    amount: i64,
    reason: String,
    now: i64,
) -> Result<i64, StoreError> {
    let balance = c
        .fetch_i64(
            "UPDATE services SET qty_available = qty_available + $1 WHERE customer_id = $2 RETURNING qty_available",
            &[Arg::Int(amount), Arg::Int(customer.get())],
        )
        .await?
        .ok_or(StoreError::NotFound("customer"))?;
    let entry = LedgerEntry {
        at: now,
        kind,
        amount,
        balance,
        task_id: task,
        reason,
    };
    ledger_row(c, customer, &entry).await?;
    Ok(balance)
}

/// Takes (`delta` > 0) or gives back (`delta` < 0) credits of an all-type
/// service for a task, with its ledger row. A take larger than what is
/// available is refused, and nothing is taken.
pub(crate) async fn move_credits(
    c: &mut impl Conn,
    customer: CustomerId,
    task: TaskId,
    delta: i64,
    reason: String,
    now: i64,
) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    let balance = c
        .fetch_i64(
            "UPDATE services SET qty_available = qty_available - $1 \
             WHERE customer_id = $2 AND qty_available - $1 >= 0 RETURNING qty_available",
            &[Arg::Int(delta), Arg::Int(customer.get())],
        )
        .await?;
    let Some(balance) = balance else {
        let available = c
            .fetch_i64(
                "SELECT qty_available FROM services WHERE customer_id = $1",
                &[Arg::Int(customer.get())],
            )
            .await?
            .unwrap_or(0);
        return Err(StoreError::Refused(Refusal::NotEnoughCredits {
            needed: delta,
            available,
        }));
    };
    let kind = if delta > 0 {
        LedgerKind::PreDeduct
    } else {
        LedgerKind::Refund
    };
    let entry = LedgerEntry {
        at: now,
        kind,
        amount: -delta,
        balance,
        task_id: Some(task),
        reason,
    };
    ledger_row(c, customer, &entry).await?;
    Ok(())
}
