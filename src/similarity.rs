//! Item-to-item similarity from co-interactions, computed in Rust over `user_item_weights`
//! streamed through an SPI cursor.
//!
//! Each user is a sparse vector over products: w(u, i) = ln(1 + affinity weight of u's
//! interactions with i), keeping only the user's `MAX_ITEMS_PER_USER` strongest products, then
//! L2-normalised, so that every user contributes at most 1 to the whole matrix (heavy users do not
//! dominate). The similarity of products i and j is the cosine of their columns, shrunk by the
//! number of users they share: sim = cos(i, j) x c / (c + shrinkage) (GUC similarity_shrinkage). The top K per product
//! (GUC similarity_top_k) replace item_similarity in one transaction.
//!
//! Memory: about 16 bytes per kept user-product pair (both sparse layouts), 40 bytes per product
//! and one dense f32/u32 scratch row per product; the user-product pairs are read in chunks.

use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::error::{During, EngineError, OrReport, Required};
use crate::gucs::{SIMILARITY_SHRINKAGE, SIMILARITY_TOP_K};

const MAX_ITEMS_PER_USER: usize = 200;
const FETCH_ROWS: i64 = 20_000;
const WRITE_ROWS: usize = 50_000;

/// Sparse matrix in compressed-row layout.
struct Csr {
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f32>,
}

impl Csr {
    fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (a, b) = (self.ptr[r] as usize, self.ptr[r + 1] as usize);
        self.idx[a..b]
            .iter()
            .copied()
            .zip(self.val[a..b].iter().copied())
    }

    fn rows(&self) -> usize {
        self.ptr.len() - 1
    }

    /// The transpose, with `cols` columns.
    fn transpose(&self, cols: usize) -> Csr {
        let mut counts = vec![0u32; cols + 1];
        for &c in &self.idx {
            counts[c as usize + 1] += 1;
        }
        for i in 0..cols {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut idx = vec![0u32; self.idx.len()];
        let mut val = vec![0f32; self.val.len()];
        for r in 0..self.rows() {
            for (c, v) in self.row(r) {
                let at = fill[c as usize] as usize;
                idx[at] = r as u32;
                val[at] = v;
                fill[c as usize] += 1;
            }
        }
        Csr {
            ptr: counts,
            idx,
            val,
        }
    }
}

/// User vectors (rows) over dense product indexes, and the product id of each index.
struct Interactions {
    users: Csr,
    products: Vec<i64>,
}

/// Streams user_item_weights in user order and builds the normalised user vectors.
fn load_interactions() -> Result<Interactions, EngineError> {
    let mut product_index: HashMap<i64, u32> = HashMap::new();
    let mut products: Vec<i64> = Vec::new();
    let mut users = Csr {
        ptr: vec![0],
        idx: Vec::new(),
        val: Vec::new(),
    };
    let mut current_user: Option<i64> = None;
    let mut row: Vec<(u32, f32)> = Vec::new();

    let flush = |row: &mut Vec<(u32, f32)>, users: &mut Csr| {
        if row.len() >= 2 {
            row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            row.truncate(MAX_ITEMS_PER_USER);
            let norm = row.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            for &(i, w) in row.iter() {
                users.idx.push(i);
                users.val.push(w / norm);
            }
            users.ptr.push(users.idx.len() as u32);
        }
        row.clear();
    };

    const READING: &str = "reading user_item_weights";
    Spi::connect(|client| {
        let mut cursor = client
            .try_open_cursor(
                "SELECT user_id, product_id, weight FROM popularity_engine.user_item_weights
                  WHERE weight > 0 ORDER BY user_id, product_id",
                &[],
            )
            .during(READING)?;
        loop {
            let chunk = cursor.fetch(FETCH_ROWS).during(READING)?;
            if chunk.is_empty() {
                break;
            }
            for tuple in chunk {
                let user: i64 = tuple.get(1).required(READING, "user_id")?;
                let product: i64 = tuple.get(2).required(READING, "product_id")?;
                let weight: f64 = tuple.get(3).required(READING, "weight")?;
                if current_user != Some(user) {
                    flush(&mut row, &mut users);
                    current_user = Some(user);
                }
                let index = *product_index.entry(product).or_insert_with(|| {
                    products.push(product);
                    (products.len() - 1) as u32
                });
                row.push((index, (1.0 + weight).ln() as f32));
            }
            pg_sys::check_for_interrupts!();
        }
        Ok::<_, EngineError>(())
    })?;
    flush(&mut row, &mut users);
    Ok(Interactions { users, products })
}

/// Top-k neighbours of every product: (product, neighbour, score), best first per product.
/// `check_interrupts` runs every few thousand products (Postgres' CHECK_FOR_INTERRUPTS in the
/// server; passed in so that this stays plain Rust, testable without a server).
fn top_k_neighbours(
    data: &Interactions,
    k: usize,
    shrinkage: f32,
    mut check_interrupts: impl FnMut(),
) -> Vec<(i64, i64, f64)> {
    let n = data.products.len();
    let items = data.users.transpose(n);
    let norms: Vec<f32> = (0..n)
        .map(|i| items.row(i).map(|(_, w)| w * w).sum::<f32>().sqrt())
        .collect();

    let mut dot = vec![0f32; n];
    let mut shared = vec![0u32; n];
    let mut touched: Vec<u32> = Vec::new();
    let mut scored: Vec<(f32, i64)> = Vec::new();
    let mut out = Vec::new();
    for i in 0..n {
        if i % 4096 == 0 {
            check_interrupts();
        }
        for (u, wu) in items.row(i) {
            for (j, wj) in data.users.row(u as usize) {
                if j as usize == i {
                    continue;
                }
                if shared[j as usize] == 0 {
                    touched.push(j);
                }
                dot[j as usize] += wu * wj;
                shared[j as usize] += 1;
            }
        }
        scored.clear();
        for &j in &touched {
            let j = j as usize;
            let c = shared[j] as f32;
            let cosine = dot[j] / (norms[i] * norms[j]);
            let score = (cosine * c / (c + shrinkage)).min(1.0);
            if score > 0.0 {
                scored.push((score, data.products[j]));
            }
            dot[j] = 0.0;
            shared[j] = 0;
        }
        touched.clear();
        let by_rank = |a: &(f32, i64), b: &(f32, i64)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_rank);
            scored.truncate(k);
        }
        scored.sort_by(by_rank);
        out.extend(
            scored
                .iter()
                .map(|&(s, j)| (data.products[i], j, f64::from(s))),
        );
    }
    out
}

/// Internal: computes the top-K similar products per product and replaces item_similarity;
/// returns the number of pairs. Call refresh_item_similarity() instead.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn compute_item_similarity() -> i64 {
    replace_item_similarity().or_report("popularity_engine.compute_item_similarity")
}

extension_sql!(
    r#"COMMENT ON FUNCTION popularity_engine.compute_item_similarity() IS
  'Internal: computes the top-K similar products per product in Rust and replaces item_similarity; returns the number of pairs. Call refresh_item_similarity() instead.';"#,
    name = "compute_item_similarity_comment",
    requires = [compute_item_similarity]
);

fn replace_item_similarity() -> Result<i64, EngineError> {
    const WRITING: &str = "writing item_similarity";
    let k = SIMILARITY_TOP_K.get().max(1) as usize;
    let data = load_interactions()?;
    let shrinkage = SIMILARITY_SHRINKAGE.get() as f32;
    let pairs = top_k_neighbours(&data, k, shrinkage, || {
        pg_sys::check_for_interrupts!();
    });
    drop(data);
    Spi::connect_mut(|client| {
        client
            .update("DELETE FROM popularity_engine.item_similarity", None, &[])
            .during("clearing item_similarity")?;
        for chunk in pairs.chunks(WRITE_ROWS) {
            let products: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let similar: Vec<i64> = chunk.iter().map(|p| p.1).collect();
            let scores: Vec<f64> = chunk.iter().map(|p| p.2).collect();
            let args: [DatumWithOid; 3] = [products.into(), similar.into(), scores.into()];
            client
                .update(
                    "INSERT INTO popularity_engine.item_similarity (product_id, similar_product_id, score)
                     SELECT * FROM unnest($1::int8[], $2::int8[], $3::float8[])",
                    None,
                    &args,
                )
                .during(WRITING)?;
            pg_sys::check_for_interrupts!();
        }
        Ok(pairs.len() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[(u32, f32)]]) -> Csr {
        let mut m = Csr {
            ptr: vec![0],
            idx: vec![],
            val: vec![],
        };
        for r in rows {
            for &(i, v) in r.iter() {
                m.idx.push(i);
                m.val.push(v);
            }
            m.ptr.push(m.idx.len() as u32);
        }
        m
    }

    #[test]
    fn transpose_round_trips() {
        let m = matrix(&[&[(0, 1.0), (2, 2.0)], &[(1, 3.0)], &[(0, 4.0), (1, 5.0)]]);
        let t = m.transpose(3);
        assert_eq!(t.row(0).collect::<Vec<_>>(), vec![(0, 1.0), (2, 4.0)]);
        assert_eq!(t.row(1).collect::<Vec<_>>(), vec![(1, 3.0), (2, 5.0)]);
        let back = t.transpose(3);
        assert_eq!(back.idx, m.idx);
        assert_eq!(back.val, m.val);
    }

    #[test]
    fn cosine_with_shrinkage_and_ties_by_id() {
        // three users who all interacted with products 10 and 20 equally; 30 only with one
        let s = 0.5f32.sqrt();
        let users = matrix(&[
            &[(0, s), (1, s)],
            &[(0, s), (1, s)],
            &[(0, s), (1, s)],
            &[(1, s), (2, s)],
        ]);
        let data = Interactions {
            users,
            products: vec![10, 20, 30],
        };
        let out = top_k_neighbours(&data, 5, 3.0, || {});
        let sim = |a: i64, b: i64| out.iter().find(|p| p.0 == a && p.1 == b).map(|p| p.2);
        // 10 and 20: cosine 3/(sqrt(3)*2) = 0.866, shrunk by 3/(3+3)
        let expected = 3.0 / (3f64.sqrt() * 2.0) * 0.5;
        assert!((sim(10, 20).unwrap() - expected).abs() < 1e-6);
        assert_eq!(sim(10, 30), None, "no shared user, no similarity");
        assert!(sim(20, 30).unwrap() > 0.0);
        assert_eq!(
            out.iter()
                .filter(|p| p.0 == 20)
                .map(|p| p.1)
                .collect::<Vec<_>>(),
            vec![10, 30]
        );
    }
}
