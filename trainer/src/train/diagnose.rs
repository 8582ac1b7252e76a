//! Reading the learning curves the way our users ask about them:
//! - "training loss falls while validation loss rises: is it overfitting?" -> [`overfitting`]
//! - "validation accuracy is above training accuracy when I augment: why?" -> [`val_above_train`]
//! - "should I balance my test set too?" -> [`prior_shift`]

use serde::Serialize;

use super::metrics::EpochMetrics;
use crate::data::ALL_CLASSES;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Overfitting {
    /// 1-based epoch of the lowest validation loss, after which it rises.
    pub onset_epoch: usize,
    pub val_loss_at_onset: f64,
    pub val_loss_last: f64,
    pub train_loss_at_onset: f64,
    pub train_loss_last: f64,
    /// 1-based epoch of the best validation accuracy.
    pub best_val_acc_epoch: usize,
    pub message: String,
}

/// Finds the epoch after which validation loss rises (by at least 2% over at least two
/// epochs) while training loss keeps falling.
pub fn overfitting(history: &[EpochMetrics]) -> Option<Overfitting> {
    let n = history.len();
    let finite = |x: f64| if x.is_finite() { x } else { f64::INFINITY };
    let m = (0..n).min_by(|&a, &b| finite(history[a].val.loss).total_cmp(&finite(history[b].val.loss)))?;
    let (first, last) = (&history[m], &history[n - 1]);
    let rising = n > m + 2 && last.val.loss > first.val.loss * 1.02;
    let train_falls = last.train.loss < first.train.loss;
    if !(rising && train_falls) {
        return None;
    }
    // The first epoch reaching the best validation accuracy (ties go to the earliest).
    let best_acc =
        (0..n).fold(0, |best, e| if history[e].val.accuracy > history[best].val.accuracy { e } else { best });
    let mut message = format!(
        "overfitting from epoch {}: validation loss rose from {:.3} to {:.3} over the next {} epoch(s) while \
         training loss fell from {:.3} to {:.3}",
        first.epoch,
        first.val.loss,
        last.val.loss,
        n - 1 - m,
        first.train.loss,
        last.train.loss
    );
    if best_acc > m {
        message.push_str(&format!(
            "; validation accuracy still rose until epoch {} ({:.1}%): the model grows over-confident on the \
             images it gets wrong before it gets worse at ranking them, so select by accuracy and read loss as \
             calibration",
            history[best_acc].epoch,
            100.0 * history[best_acc].val.accuracy
        ));
    } else {
        message.push_str(&format!(
            "; validation accuracy peaked at epoch {} ({:.1}%)",
            history[best_acc].epoch,
            100.0 * history[best_acc].val.accuracy
        ));
    }
    message.push_str(
        ". Remedies: stronger augmentation, dropout or weight decay, a smaller dense head, early stopping.",
    );
    Some(Overfitting {
        onset_epoch: first.epoch,
        val_loss_at_onset: first.val.loss,
        val_loss_last: last.val.loss,
        train_loss_at_onset: first.train.loss,
        train_loss_last: last.train.loss,
        best_val_acc_epoch: history[best_acc].epoch,
        message,
    })
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ValAboveTrain {
    /// Epochs where validation accuracy beat training accuracy.
    pub epochs: usize,
    pub of_epochs: usize,
    pub mean_gap: f64,
    /// Mean over those epochs of validation accuracy scored with training augmentation.
    pub val_augmented_acc: Option<f64>,
    pub mean_train_acc: f64,
    pub message: String,
}

/// Explains validation accuracy above training accuracy, using validation scored with the
/// training augmentation when it was measured. `augmented`: whether training augmented.
pub fn val_above_train(history: &[EpochMetrics], augmented: bool) -> Option<ValAboveTrain> {
    let above: Vec<&EpochMetrics> = history.iter().filter(|h| h.val.accuracy > h.train.accuracy).collect();
    if above.is_empty() || above.len() * 2 < history.len() {
        return None;
    }
    let k = above.len() as f64;
    let mean_gap = above.iter().map(|h| h.val.accuracy - h.train.accuracy).sum::<f64>() / k;
    let mean_train_acc = above.iter().map(|h| h.train.accuracy).sum::<f64>() / k;
    let aug: Vec<f64> = above.iter().filter_map(|h| h.val_augmented.as_ref().map(|v| v.accuracy)).collect();
    let val_augmented_acc = (aug.len() == above.len()).then(|| aug.iter().sum::<f64>() / k);
    let base = format!(
        "validation accuracy was above training accuracy in {} of {} epochs (by {:.1} points on average). \
         Training accuracy is measured {}with dropout active, averaged over an epoch in which the weights were \
         still improving; validation is scored {}without dropout, with the end-of-epoch weights",
        above.len(),
        history.len(),
        100.0 * mean_gap,
        if augmented { "on augmented images " } else { "" },
        if augmented { "on clean images, " } else { "" }
    );
    let message = match val_augmented_acc {
        Some(v) if v <= mean_train_acc + 0.01 => format!(
            "{base}. Scored on augmented validation images the model gets {:.1}%, no better than training's \
             {:.1}%: the gap comes from augmentation and dropout, not from a leak or an easy validation set.",
            100.0 * v,
            100.0 * mean_train_acc
        ),
        Some(v) => format!(
            "{base}. Even on augmented validation images it scores {:.1}% against training's {:.1}%: beyond \
             augmentation, dropout and the epoch average, check whether validation is easier than training or \
             shares images (duplicates) with it.",
            100.0 * v,
            100.0 * mean_train_acc
        ),
        None if augmented => {
            format!(
                "{base}. Score validation under augmentation too to measure how much of the gap it explains."
            )
        }
        None => format!(
            "{base}. Without augmentation, a persistent gap means validation is easier than training, or shares \
             images (duplicates, the same subjects) with it."
        ),
    };
    Some(ValAboveTrain {
        epochs: above.len(),
        of_epochs: history.len(),
        mean_gap,
        val_augmented_acc,
        mean_train_acc,
        message,
    })
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PriorShift {
    /// Share of each class in what the model trained on (after balancing).
    pub train: Vec<f64>,
    /// Share of each class in the set it is judged on.
    pub eval: Vec<f64>,
    pub eval_set: String,
    /// Total variation distance between the two (0 = same mix, 1 = disjoint).
    pub total_variation: f64,
    pub message: String,
}

/// Compares the class mix the model trained on with the one it is evaluated on.
pub fn prior_shift(
    train: &[f64],
    eval_counts: &[usize],
    eval_set: &str,
    balanced_training: bool,
) -> Option<PriorShift> {
    let total: usize = eval_counts.iter().sum();
    if total == 0 {
        return None;
    }
    let eval: Vec<f64> = eval_counts.iter().map(|&c| c as f64 / total as f64).collect();
    let tv = 0.5 * train.iter().zip(&eval).map(|(a, b)| (a - b).abs()).sum::<f64>();
    if tv < 0.05 {
        return None;
    }
    let biggest =
        (0..eval.len()).max_by(|&a, &b| (eval[a] - train[a]).abs().total_cmp(&(eval[b] - train[b]).abs()))?;
    let mut message = format!(
        "the class mix differs between training and {eval_set} (total variation {tv:.2}; largest: {} is {:.1}% \
         of training, {:.1}% of {eval_set}). Plain accuracy depends on that mix, balanced accuracy and macro-F1 \
         do not: compare models on those.",
        ALL_CLASSES[biggest],
        100.0 * train[biggest],
        100.0 * eval[biggest]
    );
    if balanced_training {
        message.push_str(
            " Training was balanced, so the model's prior is flat while the evaluation set's is not: it \
             under-predicts frequent classes, which costs plain accuracy and gains balanced accuracy. Do not \
             balance the test set to hide this; report both.",
        );
    }
    Some(PriorShift {
        train: train.to_vec(),
        eval,
        eval_set: eval_set.to_string(),
        total_variation: tv,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::metrics::SetMetrics;

    fn epoch(
        e: usize,
        train_loss: f64,
        val_loss: f64,
        train_acc: f64,
        val_acc: f64,
        aug: Option<f64>,
    ) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train: SetMetrics { loss: train_loss, accuracy: train_acc, ..Default::default() },
            val: SetMetrics { loss: val_loss, accuracy: val_acc, ..Default::default() },
            val_augmented: aug.map(|a| SetMetrics { accuracy: a, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_onset_of_overfitting() {
        let h = vec![
            epoch(1, 1.6, 1.5, 0.35, 0.40, None),
            epoch(2, 1.3, 1.30, 0.50, 0.48, None),
            epoch(3, 1.1, 1.25, 0.58, 0.52, None),
            epoch(4, 0.9, 1.28, 0.66, 0.54, None),
            epoch(5, 0.7, 1.40, 0.75, 0.53, None),
        ];
        let o = overfitting(&h).unwrap();
        assert_eq!(o.onset_epoch, 3);
        assert_eq!(o.best_val_acc_epoch, 4);
        assert!(o.message.contains("over-confident"), "{}", o.message);
        // Still improving: no diagnosis.
        assert_eq!(overfitting(&h[..3]), None);
        // Validation loss wobbling by less than 2%: no diagnosis.
        let flat = vec![
            epoch(1, 1.0, 1.0, 0.5, 0.5, None),
            epoch(2, 0.9, 1.005, 0.5, 0.5, None),
            epoch(3, 0.8, 1.01, 0.5, 0.5, None),
        ];
        assert_eq!(overfitting(&flat), None);
    }

    #[test]
    fn explains_validation_above_training_with_augmented_validation() {
        let h = vec![epoch(1, 1.5, 1.3, 0.40, 0.50, Some(0.39)), epoch(2, 1.3, 1.2, 0.45, 0.55, Some(0.44))];
        let v = val_above_train(&h, true).unwrap();
        assert_eq!(v.epochs, 2);
        assert!(v.message.contains("not from a leak"), "{}", v.message);
        let h2 = vec![epoch(1, 1.5, 1.3, 0.40, 0.50, Some(0.49))];
        assert!(val_above_train(&h2, true).unwrap().message.contains("duplicates"));
        let h3 = vec![epoch(1, 1.5, 1.3, 0.60, 0.50, None)];
        assert_eq!(val_above_train(&h3, true), None);
    }

    #[test]
    fn notes_a_prior_shift() {
        let flat = vec![1.0 / 7.0; 7];
        let p = prior_shift(&flat, &[10, 1, 10, 25, 12, 8, 12], "test", true).unwrap();
        assert_eq!(ALL_CLASSES[3], "happy");
        assert!(
            p.message.contains("happy") && p.message.contains("Do not balance the test set"),
            "{}",
            p.message
        );
        assert_eq!(prior_shift(&flat, &[1, 1, 1, 1, 1, 1, 1], "test", false), None);
    }
}
