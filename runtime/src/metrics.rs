//! Classification metrics, plain and balanced, from a confusion matrix: shared by the
//! trainer's reports and `fer eval`.

use serde::{Deserialize, Serialize};

/// `counts[target][predicted]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion { counts: vec![vec![0; classes]; classes] }
    }

    pub fn add(&mut self, target: usize, predicted: usize) {
        self.counts[target][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Recall of each class with images (None for a class absent from the targets).
    pub fn recalls(&self) -> Vec<Option<f64>> {
        self.counts
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[c] as f64 / n as f64)
            })
            .collect()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|c| self.counts[c][c]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Mean recall over the classes present in the targets.
    pub fn balanced_accuracy(&self) -> f64 {
        let r: Vec<f64> = self.recalls().into_iter().flatten().collect();
        if r.is_empty() { 0.0 } else { r.iter().sum::<f64>() / r.len() as f64 }
    }

    /// Mean F1 over the classes present in the targets (a class never predicted scores 0).
    pub fn macro_f1(&self) -> f64 {
        let k = self.counts.len();
        let mut f1s = Vec::new();
        for c in 0..k {
            let support: u64 = self.counts[c].iter().sum();
            if support == 0 {
                continue;
            }
            let predicted: u64 = (0..k).map(|t| self.counts[t][c]).sum();
            let tp = self.counts[c][c] as f64;
            let f1 = if predicted == 0 || tp == 0.0 {
                0.0
            } else {
                let (p, r) = (tp / predicted as f64, tp / support as f64);
                2.0 * p * r / (p + r)
            };
            f1s.push(f1);
        }
        if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_is_zero_for_a_class_never_predicted_and_absent_classes_are_skipped() {
        let mut c = Confusion::new(3);
        c.add(0, 0);
        c.add(1, 0);
        assert_eq!(c.recalls(), vec![Some(1.0), Some(0.0), None]);
        // class 0: p = 1/2, r = 1 -> 2/3; class 1: 0; class 2 has no images.
        assert!((c.macro_f1() - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(Confusion::new(2).accuracy(), 0.0);
    }
}
