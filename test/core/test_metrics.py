"""ConfusionMatrix against hand-computed numbers, and its DDP reduction."""

import json
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from smmcl_core.metrics import ConfusionMatrix

# 4 classes, class 3 never appears in the targets; the last pixel is ignored (255).
TARGET = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
PRED = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 0]])
# rows = ground truth: gt0 -> [1,1,0,0], gt1 -> [0,2,0,0], gt2 -> [1,0,1,0]
EXPECTED = [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def _filled(background_index=None):
    cm = ConfusionMatrix(4, ignore_index=255, background_index=background_index)
    cm.update(PRED, TARGET)
    return cm


def test_hand_computed_values():
    """Hand computed values."""
    cm = _filled(background_index=0)
    assert cm.matrix.tolist() == EXPECTED
    iou = cm.iou().tolist()
    # IoU = TP / (row + col - TP): 1/(2+2-1), 2/(2+3-2), 1/(2+1-1), class 3 absent -> NaN
    assert iou[:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert cm.miou_no_background() == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    assert cm.accuracy().tolist()[:3] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert cm.mean_accuracy() == pytest.approx(2 / 3)
    assert _filled().miou_no_background() == pytest.approx(cm.miou())


def test_predicted_but_absent_class_counts_as_zero_iou():
    """Predicted but absent class counts as zero iou."""
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 2]), torch.tensor([0, 0]))
    assert cm.iou().tolist()[0] == pytest.approx(0.5)
    assert math.isnan(cm.iou().tolist()[1])
    assert cm.iou().tolist()[2] == 0.0
    assert cm.miou() == pytest.approx(0.25)


def test_updates_accumulate_and_reset():
    """Updates accumulate and reset."""
    cm = ConfusionMatrix(4)
    cm.update(PRED[:1], TARGET[:1])
    cm.update(PRED[1:], TARGET[1:])
    assert cm.matrix.tolist() == EXPECTED
    cm.reset()
    assert cm.matrix.sum() == 0 and math.isnan(cm.miou()) and math.isnan(cm.pixel_accuracy())


def test_update_inside_inference_mode_then_reduce_and_reset_outside():
    """Update inside inference mode then reduce and reset outside."""
    cm = ConfusionMatrix(4)
    with torch.inference_mode():
        cm.update(PRED, TARGET)
    cm.reduce()  # not distributed: no-op
    assert cm.matrix.tolist() == EXPECTED
    cm.reset()
    assert cm.matrix.sum() == 0


def test_bad_input_is_rejected():
    """Bad input is rejected."""
    cm = ConfusionMatrix(4)
    with pytest.raises(ValueError, match='shape'):
        cm.update(PRED[:1], TARGET)
    with pytest.raises(ValueError, match=r'\[0, 4\)'):
        cm.update(torch.tensor([4]), torch.tensor([0]))
    with pytest.raises(ValueError, match='argmax'):
        cm.update(PRED.float(), TARGET)
    with pytest.raises(ValueError, match='background_index'):
        ConfusionMatrix(4, background_index=4)


def test_to_dict_is_json_with_names():
    """To dict is json with names."""
    report = _filled(background_index=0).to_dict(['floor', 'wall', 'box', 'lamp'])
    text = json.dumps(report, allow_nan=False)  # NaN became null
    back = json.loads(text)
    assert back['per_class']['wall'] == {'iou': pytest.approx(2 / 3), 'accuracy': 1.0,
                                         'pixels': 2}
    assert back['per_class']['lamp']['iou'] is None
    assert back['miou'] == pytest.approx(0.5)
    assert back['confusion_matrix'] == EXPECTED
    with pytest.raises(ValueError, match='class_names'):
        _filled().to_dict(['a'])


def _ddp_worker(rank, world, init_file, queue):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world)
    try:
        cm = ConfusionMatrix(4)
        half = slice(0, 1) if rank == 0 else slice(1, 2)
        cm.update(PRED[half], TARGET[half])
        cm.reduce()
        queue.put((rank, cm.matrix.tolist()))
    finally:
        dist.destroy_process_group()


def test_reduce_sums_over_ranks(tmp_path):
    """Reduce sums over ranks."""
    ctx = mp.get_context('spawn')
    queue = ctx.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / 'store'), queue), nprocs=2,
                       start_method='spawn')
    results = dict(queue.get() for _ in range(2))
    assert results[0] == EXPECTED and results[1] == EXPECTED
