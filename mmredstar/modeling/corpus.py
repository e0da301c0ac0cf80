"""The built-in text the tiny tokenizer is trained on: math, geometry, chain-of-thought English,
LaTeX and code keywords. Deterministic (no randomness, no files), so the tiny tokenizer is the same
on every machine.

Used by ``mmredstar.modeling.tokenizer.build_tiny_tokenizer``; nothing else needs it.
"""

from __future__ import annotations

PROSE = """
Let us think step by step. First, we need to find the value of x. We know that the sum of the interior
angles of a triangle is 180 degrees. Therefore the missing angle is 180 - 60 - 70 = 50 degrees.
The figure shows a regular polygon with 5 sides, so the interior angles sum to (5-2) × 180° = 540°.
Answer: 540
The answer is 12. So the final answer is \\boxed{12}.
Wait, let me check this again. Hmm, that does not seem right. Let me reconsider the problem.
Alternatively, we can solve the equation directly. Substituting x = 3 into the equation gives 2x + 1 = 7.
Since the triangle is isosceles, the two base angles are equal. In the figure, AB is parallel to CD.
Given that the radius of the circle is 4, the area is 16π and the circumference is 8π.
The slope of the line through the points (1, 2) and (3, 6) is (6 - 2) / (3 - 1) = 2.
Because angle ABC is an inscribed angle, it is half of the central angle AOC.
The probability of drawing a red ball is 3/8, so the probability of not drawing one is 5/8.
Consider the function f(x) = x^2 - 4x + 3. Its roots are x = 1 and x = 3, and its vertex is at (2, -1).
We are asked to compute the number of ways to choose 3 objects out of 10, which is C(10, 3) = 120.
By the Pythagorean theorem, the hypotenuse is sqrt(3^2 + 4^2) = 5.
The question asks which of the choices is correct. The options are A, B, C and D.
Looking at the image, the shape is a square, a rectangle, a triangle, a pentagon, a hexagon or a circle.
The quadrilateral has four sides and four vertices; the pentagon has five; the hexagon has six.
Each exterior angle of a regular polygon with n sides measures 360/n degrees.
The perimeter is the sum of the lengths of all sides. The area of a rectangle is length times width.
I think the answer should be B. Let me verify: the value we found matches option B.
Therefore, the correct option is C. The number of sides is 4, so the sum is 360.
To solve this problem, we first simplify the expression, then factor, and finally check each case.
Note that the sequence is arithmetic with common difference 3, so the nth term is a + (n - 1)d.
The integer solutions are 2, 3 and 7. Their sum is 12 and their product is 42.
If the remainder is 0, then n is divisible by 9. Otherwise we continue with the next value.
This is a contradiction, so our assumption was wrong. Hence the statement is true for all n.
We need at least one more equation. From the second condition, we get y = 2x - 1.
The total cost is 45 dollars and 20 cents. She bought 3 apples and 4 oranges.
In the right triangle, the sine of angle A is the opposite side over the hypotenuse.
The tangent line touches the circle at exactly one point, and it is perpendicular to the radius.
The median, the altitude and the angle bisector from the vertex coincide in an equilateral triangle.
The diagonal of the square is s√2, the volume of the cube is s^3 and its surface area is 6s^2.
What is the value of the expression? Which figure has the largest area? How many sides does it have?
Find the measure of angle ABC. Compute the length of segment DE. Determine the area of the shaded region.
Answer the question with a single letter. Put your final answer within \\boxed{}.
Please reason step by step, and put your final answer within \\boxed{}.
You are a helpful assistant. The user asks a question, and the assistant solves it.
"""

LATEX = r"""
\frac{1}{2} \frac{a}{b} \sqrt{2} \sqrt{x^2 + y^2} \cdot \times \div \pm \leq \geq \neq \approx
\angle ABC = 90^\circ \triangle ABC \cong \triangle DEF \parallel \perp \pi r^2 2\pi r
\sin \cos \tan \log \ln \exp \lim_{x \to 0} \sum_{k=1}^{n} k = \frac{n(n+1)}{2} \int_0^1 x \, dx
\left( \right) \left[ \right] \{ \} \text{ and } \mathbb{R} \infty \alpha \beta \theta \gamma
\boxed{\frac{3}{4}} \boxed{-2} \boxed{7} x_1 + x_2 a_n = a_{n-1} + d \binom{n}{k} \equiv \pmod{7}
"""

CODE = """
def solve(n):
    result = 0
    for i in range(n):
        if i % 2 == 0:
            result += i
        else:
            continue
    return result

class Solution:
    def maxProfit(self, prices: list[int]) -> int:
        best, low = 0, float("inf")
        while True:
            break
        return best

import sys
from collections import defaultdict, Counter, deque
n = int(input())
a = list(map(int, input().split()))
print(sum(a), max(a), min(a), len(a))
if __name__ == "__main__":
    main()
try:
    pass
except ValueError:
    raise
lambda x: x + 1 and or not in is None True False
```python
print("Hello, world!")
```
"""

SHAPES = ["triangle", "square", "rectangle", "pentagon", "hexagon", "heptagon", "octagon", "circle",
          "polygon", "quadrilateral", "rhombus", "trapezoid", "parallelogram"]
COLORS = ["red", "green", "blue", "yellow", "black", "white", "orange", "purple", "gray"]
WORDS_OF_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def corpus() -> list[str]:
    """The training texts, in a fixed order (the templates below expand without randomness)."""
    texts = [PROSE, LATEX, CODE]
    lines = []
    for k, shape in enumerate(SHAPES):
        color = COLORS[k % len(COLORS)]
        n = 3 + k % 6
        lines.append(f"The image shows a {color} {shape}. It has {n} sides and {n} vertices.")
        lines.append(f"A regular {shape} with {WORDS_OF_NUMBERS[n]} sides has interior angles summing to "
                     f"({n}-2) × 180° = {(n - 2) * 180}°. Answer: {(n - 2) * 180}")
        lines.append(f"Question: How many sides does the {color} shape have? Choices: A. 3 B. 4 C. 5 D. 6")
    for a in range(1, 13):
        lines.append(f"{a} + {a + 1} = {2 * a + 1}, {a} × {a + 2} = {a * (a + 2)}, so x = {a}.")
    texts.append("\n".join(lines))
    return texts
