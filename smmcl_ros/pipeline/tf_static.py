"""Static transforms from ``/tf_static`` without tf2_ros: a small tree of fixed frames.

Camera drivers publish their extrinsics (e.g. ``camera_link -> camera_depth_optical_frame``,
``camera_link -> camera_color_optical_frame``) as ``tf2_msgs/TFMessage`` on ``/tf_static``
(transient local). :class:`StaticTransforms` keeps the latest transform of every child frame
and composes the transform between any two connected frames, through chains and common
ancestors alike.

ROS-free: messages are duck-typed (``TFMessage.transforms`` of ``TransformStamped`` with
``header.frame_id``, ``child_frame_id``, ``transform.translation.{x,y,z}`` and
``transform.rotation.{x,y,z,w}``), so this module imports no message package.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from smmcl_core.data.registration import transform_matrix


class TransformLookupError(LookupError):
    """No static transform connects two frames; the message names them and the known frames."""


def _frame(name: str) -> str:
    """tf2 frame ids carry no leading slash."""
    return str(name).lstrip('/')


def stamped_matrix(transform: Any) -> np.ndarray:
    """``(4,4)`` of a ``TransformStamped``: child frame -> parent frame (``header.frame_id``)."""
    t, q = transform.transform.translation, transform.transform.rotation
    return transform_matrix((t.x, t.y, t.z), (q.x, q.y, q.z, q.w),
                            f'transform {transform.header.frame_id} -> '
                            f'{transform.child_frame_id}')


def matrix_to_pose(matrix: np.ndarray) -> List[float]:
    """``(4,4)`` rigid transform -> ``[x, y, z, qx, qy, qz, qw]`` (``qw >= 0``)."""
    R = np.asarray(matrix, np.float64)[:3, :3]
    trace = np.trace(R)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (R[j, i] + R[i, j]) / s, (R[k, i] + R[i, k]) / s
    q = np.asarray(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return [float(v) for v in matrix[:3, 3]] + [float(v) for v in q]


def _inverse(matrix: np.ndarray) -> np.ndarray:
    inverse = np.eye(4)
    inverse[:3, :3] = matrix[:3, :3].T
    inverse[:3, 3] = -matrix[:3, :3].T @ matrix[:3, 3]
    return inverse


class StaticTransforms:
    """The latest static transform of every child frame, composed on request."""

    def __init__(self) -> None:
        self._parent: Dict[str, Tuple[str, np.ndarray]] = {}  # child -> (parent, child->parent)

    def __len__(self) -> int:
        return len(self._parent)

    @property
    def frames(self) -> List[str]:
        """Every frame id seen, sorted."""
        names = set(self._parent)
        names.update(parent for parent, _ in self._parent.values())
        return sorted(names)

    def add_message(self, message: Any) -> int:
        """Add every transform of a ``TFMessage``; returns how many were added."""
        return self.add(message.transforms)

    def add(self, transforms: Iterable[Any]) -> int:
        """Add ``TransformStamped`` objects (a later one for the same child replaces it).

        Raises:
            ValueError: A transform from a frame to itself, or a non-finite/zero rotation.
        """
        count = 0
        for transform in transforms:
            parent, child = _frame(transform.header.frame_id), _frame(transform.child_frame_id)
            if not parent or not child or parent == child:
                raise ValueError(f'/tf_static transform {parent!r} -> {child!r}: frame ids must '
                                 f'be non-empty and differ')
            matrix = stamped_matrix(transform)
            if not np.isfinite(matrix).all():
                raise ValueError(f'/tf_static transform {parent} -> {child} is not finite')
            self._parent[child] = (parent, matrix)
            count += 1
        return count

    def _to_root(self, frame: str) -> List[Tuple[str, np.ndarray]]:
        """``[(frame, frame->frame), (parent, frame->parent), ...]`` up to the root."""
        chain, matrix, seen = [(frame, np.eye(4))], np.eye(4), {frame}
        while frame in self._parent:
            parent, step = self._parent[frame]
            if parent in seen:
                raise TransformLookupError(f'/tf_static has a cycle through {parent!r}')
            matrix = step @ matrix
            chain.append((parent, matrix))
            seen.add(parent)
            frame = parent
        return chain

    def lookup(self, target: str, source: str) -> np.ndarray:
        """``(4,4)`` mapping points of ``source`` into ``target``: ``p_target = T @ p_source``.

        Raises:
            TransformLookupError: A frame is unknown, or the two are not connected.
        """
        target, source = _frame(target), _frame(source)
        if target == source:
            return np.eye(4)
        known = self.frames
        missing = [name for name in (target, source) if name not in known]
        if missing:
            shown = ', '.join(known) if known else 'none (no /tf_static message yet)'
            raise TransformLookupError(f'frame(s) {", ".join(map(repr, missing))} not in '
                                       f'/tf_static; known frames: {shown}')
        up_target = dict(self._to_root(target))  # ancestor -> target->ancestor
        for ancestor, source_to_ancestor in self._to_root(source):
            if ancestor in up_target:
                return _inverse(up_target[ancestor]) @ source_to_ancestor
        raise TransformLookupError(f'frames {target!r} and {source!r} are in different /tf_static '
                                   f'trees; no transform connects them')

    def path(self, target: str, source: str) -> Optional[List[str]]:
        """Frame ids from ``source`` to ``target`` through their common ancestor (None: none)."""
        target, source = _frame(target), _frame(source)
        edges: Dict[str, List[str]] = {}
        for child, (parent, _) in self._parent.items():
            edges.setdefault(child, []).append(parent)
            edges.setdefault(parent, []).append(child)
        previous: Dict[str, Optional[str]] = {source: None}
        queue = deque([source])
        while queue:
            frame = queue.popleft()
            if frame == target:
                names = [frame]
                while previous[names[-1]] is not None:
                    names.append(previous[names[-1]])
                return names[::-1]
            for other in edges.get(frame, []):
                if other not in previous:
                    previous[other] = frame
                    queue.append(other)
        return None
